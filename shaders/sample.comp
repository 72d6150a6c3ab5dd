#version 450
// The demo's consumer: samples the shared image (a combined image sampler,
// nearest filtering, one texel per invocation) into a buffer the host reads.
// Each invocation first spins `work` rounds of a hash, so the dispatch
// reads the image progressively over a while, as a display's scan-out
// would; `zero` is 0 at run time, so the hash moves no sample.
layout(local_size_x = 8, local_size_y = 8) in;
layout(set = 0, binding = 0) uniform sampler2D frame;
layout(std430, set = 0, binding = 1) writeonly buffer Seen { uint seen[]; };
layout(push_constant) uniform Push { uint width; uint height; uint work; uint zero; } pc;

void main() {
    uvec2 p = gl_GlobalInvocationID.xy;
    if (p.x >= pc.width || p.y >= pc.height) {
        return;
    }
    uint h = (p.x * 73856093u) ^ (p.y * 19349663u);
    for (uint i = 0u; i < pc.work; ++i) {
        h = h * 1664525u + 1013904223u;
        h ^= h >> 16;
    }
    vec2 uv = (vec2(p) + 0.5 + vec2(h & pc.zero)) / vec2(pc.width, pc.height);
    seen[p.y * pc.width + p.x] = packUnorm4x8(texture(frame, uv));
}
