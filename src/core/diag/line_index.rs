//! Line and column of a byte offset, the way editors count them, for one position or many.

/// 1-based (line, column) of byte `offset` in `text`. Columns count characters, not bytes, so
/// they match what an editor shows. An offset past the end points just after the last character;
/// an offset inside a multi-byte character points at that character. Scans `text` once: for
/// many positions in one text use a [`LineIndex`].
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(text, offset)
}

/// Where the lines of one text start, so each position's line and column costs a binary search
/// and a short scan instead of a pass over everything before it: a plan of 10,000 tasks asks
/// for tens of thousands of positions, and scanning from the top each time made validation
/// grow with the square of the file.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the first byte of each line.
    starts: Vec<usize>,
    /// Characters before each `BLOCK`-byte boundary, for columns on very long lines (a plan of
    /// inline tables can be one line).
    chars_before_block: Vec<usize>,
}

const BLOCK: usize = 1024;

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        let bytes = text.as_bytes();
        let mut chars_before_block = Vec::with_capacity(bytes.len() / BLOCK + 1);
        let mut count = 0;
        for block in bytes.chunks(BLOCK) {
            chars_before_block.push(count);
            count += char_starts(block);
        }
        LineIndex {
            starts,
            chars_before_block,
        }
    }

    /// `line_col(text, offset)` for the text this index was built from.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        // The last line starting at or before `end`.
        let line = self.starts.partition_point(|&s| s <= end).max(1);
        let start = self.starts[line - 1];
        let col = if end - start <= 2 * BLOCK {
            char_starts(&text.as_bytes()[start..end])
        } else {
            self.chars_before(text, end) - self.chars_before(text, start)
        };
        (line, col + 1)
    }

    /// Byte offset where 1-based `line` starts (the end of the text past the last line).
    pub fn line_start(&self, text: &str, line: usize) -> usize {
        self.starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len())
    }

    /// Characters in `text[..at]`, `at` on a character boundary.
    fn chars_before(&self, text: &str, at: usize) -> usize {
        let block = at / BLOCK;
        let from = block * BLOCK;
        self.chars_before_block.get(block).copied().unwrap_or(0)
            + char_starts(&text.as_bytes()[from.min(at)..at])
    }
}

/// Characters that start in `bytes` (every byte but UTF-8 continuation bytes).
fn char_starts(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_chars() {
        let t = "ab\ncé d\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        // "é" is two bytes; the space after it is the third character.
        assert_eq!(line_col(t, 6), (2, 3));
        // Inside the multi-byte character: points at it.
        assert_eq!(line_col(t, 5), (2, 2));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    /// The reference: scan everything before the offset.
    fn line_col_by_scanning(text: &str, offset: usize) -> (usize, usize) {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    #[test]
    fn the_line_index_agrees_with_scanning_on_long_lines_and_wide_characters() {
        // Lines longer than a block, characters of 1 to 4 bytes across block boundaries.
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(["a", "é", "→", "🦀", "\n", " "][i % 6]);
            if i % 7 == 0 {
                text.push_str(&"x".repeat(i % 900));
            }
        }
        let index = LineIndex::new(&text);
        for offset in (0..text.len() + 3).step_by(7) {
            assert_eq!(
                index.line_col(&text, offset),
                line_col_by_scanning(&text, offset),
                "offset {offset}"
            );
        }
        // One line of 20,000 characters, as a plan of inline tables may be.
        let one_line: String = (0..20_000).map(|i| ['a', 'é', '→', '🦀'][i % 4]).collect();
        let long = LineIndex::new(&one_line);
        for offset in (0..one_line.len() + 2).step_by(997) {
            assert_eq!(
                long.line_col(&one_line, offset),
                line_col_by_scanning(&one_line, offset),
                "offset {offset}"
            );
        }
        assert_eq!(index.line_start(&text, 1), 0);
        assert_eq!(index.line_start(&text, 2), text.find('\n').unwrap() + 1);
        assert_eq!(index.line_start(&text, usize::MAX), text.len());
    }

    proptest::proptest! {
        #[test]
        fn line_index_matches_scanning(text in "(a|é|🦀|\n|\\r){0,300}", offsets in proptest::collection::vec(0usize..1300, 1..20)) {
            let index = LineIndex::new(&text);
            for o in offsets {
                proptest::prop_assert_eq!(index.line_col(&text, o), line_col_by_scanning(&text, o));
            }
        }
    }
}
