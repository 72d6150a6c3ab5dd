//! The Khronos validation layer's messages in a child's output, and which
//! of them validation alone would not produce for our clients.
//!
//! With `DYNABUF_TEST_VALIDATION=below` every child runs validation below
//! dynabuf ([`super::vulkan_env`]), logging to its own stderr. A message
//! there is dynabuf's fault unless validation alone reports it too for the
//! same clients on this stack: those, and only those, are in
//! [`ALLOWLIST`], each with a client command line that reproduces it
//! without the layer (`tests/tests/validation.rs` runs them: the control).
//! Validation's default log format (1.3.239, `VK_DBG_LAYER_ACTION_LOG_MSG`):
//!
//! ```text
//! VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252(ERROR / SPEC): msgNum: 963335225 - Validation Error: [ VUID-... ] Object 0: ... | MessageID = 0x396b5439 | vkCreateSemaphore: ...
//!     Objects: 1
//!         [0] 0x5636d5430780, type: 3, name: NULL
//! ```
//!
//! Newer validation layers start the line with `Validation Error: [ VUID-... ]`;
//! both are recognised.

use super::{Layer, Validation, LAYER_NAME, VALIDATION_LAYER};

/// One message of the validation layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message ID (`VUID-...`, `UNASSIGNED-...`), or `msgNum:N` when
    /// the message names none.
    pub id: String,
    /// The message's first line.
    pub line: String,
}

/// A message ID validation alone reports for our clients on this stack
/// (Debian 12: validation 1.3.239, loader 1.3.239, Mesa 25.0 lavapipe).
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    pub id: &'static str,
    /// Why validation alone reports it.
    pub why: &'static str,
    /// `dynabuf-client` arguments that make validation alone report it on
    /// the host (the control test runs them without the layer).
    pub client: &'static [&'static str],
}

/// What validation alone reports for our clients, measured by running
/// every client with `DYNABUF_TEST_VALIDATION=below` and `Layer::Off` on
/// the host (`tests/tests/validation.rs` does it at every run) and the
/// whole kernel tier with `DYNABUF_TEST_VALIDATION=alone` in the VM.
/// Empty: validation alone is silent for every client here.
pub const ALLOWLIST: &[Allowed] = &[];

/// Whether `id` is in [`ALLOWLIST`].
pub fn allowed(id: &str) -> bool {
    ALLOWLIST.iter().any(|a| a.id == id)
}

/// The message starting at `line`, if it is a validation message's first
/// line. Tolerates text before it (output of another process or thread
/// that was not at a line start).
pub fn parse_line(line: &str) -> Option<Message> {
    let line = line.trim_end_matches('\r');
    // `ID(SEVERITY / TYPE): msgNum: N - text` (1.3.239's format).
    if let Some(at) = line.find("): msgNum: ") {
        let head = &line[..at];
        let open = head.rfind('(')?;
        let kind = &head[open + 1..];
        if !kind.contains(" / ") {
            return None;
        }
        let before = head[..open].trim_end();
        let token_start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        // Text of another writer glued to the front: start at a known prefix.
        let start = ["VUID-", "UNASSIGNED-", "SYNC-"]
            .iter()
            .filter_map(|p| before[token_start..].find(p))
            .min()
            .map_or(token_start, |i| token_start + i);
        let id = match &before[start..] {
            "" => {
                let num = line[at + "): msgNum: ".len()..].split_whitespace().next().unwrap_or("?");
                bracketed_id(line).unwrap_or_else(|| format!("msgNum:{num}"))
            }
            id => id.to_string(),
        };
        return Some(Message { id, line: line[start..].to_string() });
    }
    // `Validation Error: [ ID ] ...` (newer layers' format).
    let at = line.find("Validation ")?;
    let rest = &line[at..];
    let colon = rest.find(": [ ")?;
    if rest[..colon].contains(['[', ']']) || colon > "Validation Performance Warning".len() {
        return None;
    }
    let id = bracketed_id(rest)?;
    Some(Message { id, line: rest.to_string() })
}

/// The ID in `[ ID ]`.
fn bracketed_id(text: &str) -> Option<String> {
    let open = text.find("[ ")? + 2;
    let len = text[open..].find(" ]")?;
    let id = text[open..open + len].trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
}

/// Whether `line` continues a message (`    Objects: 1`, `        [0] 0x...`).
fn is_continuation(line: &str) -> bool {
    let t = line.trim_start();
    if t.len() == line.len() {
        return false;
    }
    t.starts_with("Objects: ")
        || t.strip_prefix('[').and_then(|r| r.split_once("] ")).is_some_and(|(n, _)| n.parse::<u32>().is_ok())
}

/// Every validation message in `output`.
pub fn messages(output: &str) -> Vec<Message> {
    output.lines().filter_map(parse_line).collect()
}

/// `output` without validation messages (first lines and the lines that
/// continue them): what the client itself printed.
pub fn without_messages(output: &str) -> String {
    let mut kept = String::with_capacity(output.len());
    let mut in_message = false;
    for line in output.lines() {
        if parse_line(line).is_some() || (in_message && is_continuation(line)) {
            in_message = true;
            continue;
        }
        in_message = false;
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// A line-by-line filter for a live stream: feed it each line; it says
/// whether the line belongs to a validation message.
#[derive(Debug, Default)]
pub struct LineFilter {
    in_message: bool,
}

impl LineFilter {
    pub fn is_message(&mut self, line: &str) -> bool {
        self.in_message = parse_line(line).is_some() || (self.in_message && is_continuation(line));
        self.in_message
    }
}

/// Whether two messages differ only in handles and numbers (`0x55d1...`).
fn same_but_handles(a: &str, b: &str) -> bool {
    let strip = |s: &str| -> String {
        s.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|w| !w.starts_with("0x"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    strip(a) == strip(b)
}

/// How much of a message's first line a report quotes.
const QUOTE: usize = 400;

/// Checks the output of one child, `what` (its command line), run with
/// `layer` under `validation`: `Err` with a report naming every message ID
/// not in [`ALLOWLIST`], how often it came and its first lines. Nothing to
/// check when validation is off.
pub fn check(what: &str, layer: Layer, validation: Validation, outputs: &[&str]) -> Result<(), String> {
    if !validation.enabled() {
        return Ok(());
    }
    let found: Vec<Message> = outputs.iter().flat_map(|o| messages(o)).collect();
    let mut unexpected: Vec<(String, usize, Vec<String>)> = Vec::new();
    for m in found.iter().filter(|m| !allowed(&m.id)) {
        match unexpected.iter_mut().find(|(id, ..)| *id == m.id) {
            Some((_, n, lines)) => {
                *n += 1;
                if lines.len() < 2 && !lines.iter().any(|l| same_but_handles(l, &m.line)) {
                    lines.push(m.line.clone());
                }
            }
            None => unexpected.push((m.id.clone(), 1, vec![m.line.clone()])),
        }
    }
    if unexpected.is_empty() {
        return Ok(());
    }
    let total: usize = unexpected.iter().map(|(_, n, _)| n).sum();
    let ids: Vec<&str> = unexpected.iter().map(|(id, ..)| id.as_str()).collect();
    let mut report = if layer == Layer::On && validation == Validation::Below {
        format!(
            "{VALIDATION_LAYER} below {LAYER_NAME} reported {total} message(s) that validation alone does \
             not produce for our clients, in `{what}`: {}\n",
            ids.join(", ")
        )
    } else {
        format!(
            "{VALIDATION_LAYER} alone (no dynabuf) reported {total} message(s) not in the allowlist, in \
             `{what}`: {}\n(the client misuses Vulkan, or ALLOWLIST in tests/src/env/validation.rs needs \
             the ID with a client that reproduces it)\n",
            ids.join(", ")
        )
    };
    for (id, n, lines) in &unexpected {
        report.push_str(&format!("  {id} ({n}x):\n"));
        for l in lines {
            let quoted: String = l.chars().take(QUOTE).collect();
            let more = if quoted.len() < l.len() { " [...]" } else { "" };
            report.push_str(&format!("    {quoted}{more}\n"));
        }
    }
    Err(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two messages as validation 1.3.239 wrote them under the layer, with
    /// a client's own line between them.
    const REAL: &str = "VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252(ERROR / SPEC): msgNum: 963335225 - \
Validation Error: [ VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252 ] Object 0: handle = 0x5636d5430780, \
type = VK_OBJECT_TYPE_DEVICE; | MessageID = 0x396b5439 | VkCreateSemaphore: timelineSemaphore feature is not \
enabled, can not create timeline semaphores The Vulkan spec states: If the timelineSemaphore feature is not \
enabled, semaphoreType must not equal VK_SEMAPHORE_TYPE_TIMELINE \
(https://www.khronos.org/registry/vulkan/specs/1.3-extensions/html/vkspec.html#VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252)
    Objects: 1
        [0] 0x5636d5430780, type: 3, name: NULL
layer_enumerated=true
UNASSIGNED-CoreValidation-DrawState-InvalidImageLayout(ERROR / SPEC): msgNum: 1303270965 - Validation Error: [ UNASSIGNED-CoreValidation-DrawState-InvalidImageLayout ] x
    Objects: 2
        [0] 0x1, type: 6, name: NULL
        [1] 0x2, type: 10, name: NULL
vkQueueSubmit=/lib/libVkLayer_dynabuf.so
";

    #[test]
    fn message_ids_are_read_from_validations_format() {
        let ids: Vec<String> = messages(REAL).into_iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [
                "VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252",
                "UNASSIGNED-CoreValidation-DrawState-InvalidImageLayout"
            ]
        );
        let first = &messages(REAL)[0].line;
        assert!(first.starts_with("VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252(ERROR / SPEC)"));
        assert!(first.contains("timelineSemaphore feature is not enabled"));
    }

    #[test]
    fn client_lines_survive_and_messages_go() {
        assert_eq!(
            without_messages(REAL),
            "layer_enumerated=true\nvkQueueSubmit=/lib/libVkLayer_dynabuf.so\n"
        );
        let mut f = LineFilter::default();
        let kept: Vec<&str> = REAL.lines().filter(|l| !f.is_message(l)).collect();
        assert_eq!(kept, ["layer_enumerated=true", "vkQueueSubmit=/lib/libVkLayer_dynabuf.so"]);
        // An indented client line after a client line is the client's.
        assert_eq!(without_messages("a=1\n    [0] b\n"), "a=1\n    [0] b\n");
    }

    #[test]
    fn other_formats_and_interleaving_are_recognised() {
        // Another process's partial line before the message.
        let m = parse_line("done first=1VUID-VkBufferCreateInfo-size-00912(ERROR / SPEC): msgNum: 1 - x")
            .unwrap();
        assert_eq!(m.id, "VUID-VkBufferCreateInfo-size-00912");
        let m =
            parse_line("partial VUID-VkBufferCreateInfo-size-00912(ERROR / SPEC): msgNum: 1 - x").unwrap();
        assert_eq!(m.id, "VUID-VkBufferCreateInfo-size-00912");
        assert!(m.line.starts_with("VUID-VkBufferCreateInfo-size-00912(ERROR"), "{}", m.line);
        // No ID before the parenthesis: the bracketed one, else the number.
        let m = parse_line("(ERROR / SPEC): msgNum: 7 - Validation Error: [ UNASSIGNED-x ] y").unwrap();
        assert_eq!(m.id, "UNASSIGNED-x");
        assert_eq!(parse_line("(ERROR / SPEC): msgNum: 7 - no id").unwrap().id, "msgNum:7");
        // Newer layers' format.
        let m = parse_line("Validation Error: [ VUID-vkCmdDraw-None-02699 ] Object 0: ... | MessageID = 0x1")
            .unwrap();
        assert_eq!(m.id, "VUID-vkCmdDraw-None-02699");
        let m = parse_line("Validation Warning: [ UNASSIGNED-BestPractices-x ] y").unwrap();
        assert_eq!(m.id, "UNASSIGNED-BestPractices-x");
        // Not messages.
        for l in ["ready", "done first=6000", "dynabuf: warn: Validation of [ x ] failed", "(a): msgNum: 1"] {
            assert_eq!(parse_line(l), None, "{l}");
        }
    }

    #[test]
    fn the_check_names_unexpected_ids_and_quotes_their_first_lines() {
        assert_eq!(check("c", Layer::On, Validation::Off, &[REAL]), Ok(()));
        assert_eq!(check("c", Layer::On, Validation::Below, &["a=1\n", ""]), Ok(()));
        let report = check("dynabuf-client probe", Layer::On, Validation::Below, &["", REAL]).unwrap_err();
        assert!(report.contains("below VK_LAYER_DYNABUF_dmabuf reported 2 message(s)"), "{report}");
        assert!(report.contains("`dynabuf-client probe`"), "{report}");
        assert!(
            report.contains(
                "VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252, \
                 UNASSIGNED-CoreValidation-DrawState-InvalidImageLayout"
            ),
            "{report}"
        );
        assert!(report.contains("  VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252 (1x):\n    VUID-"));
        assert!(report.contains(" [...]"), "long lines are cut: {report}");
        // The same message for another object is counted, not quoted again.
        let again = REAL.replace("0x5636d5430780", "0x5636d5999999");
        let report = check("c", Layer::On, Validation::Below, &[REAL, &again]).unwrap_err();
        assert!(report.contains("reported 4 message(s)"), "{report}");
        assert_eq!(
            report.matches("    VUID-VkSemaphoreTypeCreateInfo-timelineSemaphore-03252(ERROR").count(),
            1
        );
        let control = check("c", Layer::Off, Validation::Below, &[REAL]).unwrap_err();
        assert!(control.contains("alone (no dynabuf)"), "{control}");
        for a in ALLOWLIST {
            let line = format!("{}(ERROR / SPEC): msgNum: 1 - x", a.id);
            assert_eq!(check("c", Layer::On, Validation::Below, &[&line]), Ok(()), "{}", a.id);
        }
    }
}
