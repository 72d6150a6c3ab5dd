#version 450
// Fills data[0..count) with a hash of (index, seed): a result the CPU can
// recompute exactly, so runs with and without the layer can be compared bit
// for bit.
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) buffer Data { uint data[]; };
layout(push_constant) uniform Push { uint seed; uint count; } pc;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.count) {
        return;
    }
    uint x = (i * 2654435761u) ^ pc.seed;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    x *= 3266489917u;
    x ^= x >> 16;
    data[i] = x;
}
