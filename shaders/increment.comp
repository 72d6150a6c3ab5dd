#version 450
// Adds `seed` to data[0..count): run N times, every element must have grown
// by exactly N * seed, which proves every submission ran once.
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer Data { uint data[]; };
layout(push_constant) uniform Push { uint seed; uint count; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < pc.count) {
        data[i] += pc.seed;
    }
}
