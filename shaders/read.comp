#version 450
// Reads data[0..count) and writes nothing: the read-only job of the
// dynamic_overhead benchmark. The store runs only where an element equals
// `seed` and `seed` is 0xffffffff, which the benchmark never passes (it is
// there so the loads are not optimised away).
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer Data { uint data[]; };
layout(push_constant) uniform Push { uint seed; uint count; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < pc.count && data[i] == pc.seed && pc.seed == 0xffffffffu) {
        data[i] = 0u;
    }
}
