#version 450
// The demo's producer scene: the background (part 0) is a Julia set whose
// constant turns with the frame number, `work` iterations at most per
// pixel (what makes a frame take measurable time); blades (part > 0) are
// flat colours, lighter towards the tip.
layout(push_constant) uniform Push { uint frame; uint part; uint parts; uint work; } pc;
layout(location = 0) in vec2 pos;
layout(location = 0) out vec4 colour;

vec3 hue(float h) {
    return clamp(abs(fract(h + vec3(0.0, 2.0 / 3.0, 1.0 / 3.0)) * 6.0 - 3.0) - 1.0, 0.0, 1.0);
}

void main() {
    if (pc.part == 0u) {
        float a = 0.25 * float(pc.frame);
        vec2 c = 0.7885 * vec2(cos(a), sin(a));
        vec2 z = 1.4 * pos;
        uint i = 0u;
        for (; i < pc.work && dot(z, z) < 4.0; ++i) {
            z = vec2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c;
        }
        float t = log2(1.0 + float(i)) / log2(1.0 + float(pc.work));
        colour = vec4(i == pc.work ? vec3(0.02, 0.03, 0.12) : hue(0.55 + 1.5 * t) * t, 1.0);
    } else {
        float shade = 0.55 + 0.5 * length(pos);
        colour = vec4(hue(float(pc.part - 1u) / float(pc.parts - 1u)) * shade, 1.0);
    }
}
