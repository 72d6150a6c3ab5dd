#version 450
// The demo's producer scene, one part per draw call and no vertex buffers:
// part 0 is a full-screen triangle (the background), part k > 0 the k-th
// blade of a pinwheel that turns with the frame number.
layout(push_constant) uniform Push { uint frame; uint part; uint parts; uint work; } pc;
layout(location = 0) out vec2 pos;

const vec2 FULL_SCREEN[3] = vec2[](vec2(-1.0, -1.0), vec2(3.0, -1.0), vec2(-1.0, 3.0));
// A kite along +x: centre, flank, tip, centre, tip, other flank.
const vec2 BLADE[6] = vec2[](vec2(0.0, 0.0), vec2(0.45, 0.14), vec2(0.9, 0.0),
                             vec2(0.0, 0.0), vec2(0.9, 0.0), vec2(0.45, -0.14));

void main() {
    vec2 p;
    if (pc.part == 0u) {
        p = FULL_SCREEN[gl_VertexIndex % 3];
    } else {
        float blades = float(pc.parts - 1u);
        float a = 0.3 * float(pc.frame) + 6.2831853 * float(pc.part - 1u) / blades;
        mat2 turn = mat2(cos(a), sin(a), -sin(a), cos(a));
        p = turn * BLADE[gl_VertexIndex % 6];
    }
    pos = p;
    gl_Position = vec4(p, 0.0, 1.0);
}
