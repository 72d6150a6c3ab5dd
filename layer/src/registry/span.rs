//! A byte range of a memory object.

/// The bytes of a memory object a binding occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub size: u64,
}

impl Span {
    pub fn end(self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    /// The smallest span holding both.
    pub fn cover(self, other: Span) -> Span {
        let offset = self.offset.min(other.offset);
        Span { offset, size: self.end().max(other.end()) - offset }
    }

    pub fn contains(self, other: Span) -> bool {
        self.offset <= other.offset && other.end() <= self.end()
    }
}
