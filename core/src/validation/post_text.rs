//! What a post's text may be (CONSENSUS.md §11): at most 320 bytes, no bidirectional
//! formatting control, and something visible. Fixed code point lists, not Unicode tables.

use super::TxError;
use crate::primitives::MAX_POST_BYTES;

/// The twelve bidirectional formatting controls (Unicode's `Bidi_Control` set, closed since
/// Unicode 6.3): ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI. They reorder how
/// the characters around them are displayed, so a post holding one could show other text
/// than it carries.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069)
}

/// Code points that display as nothing (or as blank space), as a fixed list of ranges so no
/// Unicode version can change consensus: C0 and C1 controls and DEL, spaces, zero-width and
/// format characters, fillers, variation selectors and tags.
const INVISIBLE: &[(u32, u32)] = &[
    (0x0000, 0x0020),   // C0 controls and SPACE
    (0x007F, 0x00A0),   // DEL, C1 controls, NO-BREAK SPACE
    (0x00AD, 0x00AD),   // SOFT HYPHEN
    (0x034F, 0x034F),   // COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),   // ARABIC LETTER MARK
    (0x115F, 0x1160),   // HANGUL CHOSEONG / JUNGSEONG FILLER
    (0x17B4, 0x17B5),   // KHMER VOWEL INHERENT AQ / AA
    (0x180B, 0x180F),   // MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    (0x2000, 0x200F),   // EN QUAD … RIGHT-TO-LEFT MARK (spaces, ZWSP, ZWNJ, ZWJ, LRM, RLM)
    (0x2028, 0x202F),   // LINE / PARAGRAPH SEPARATOR, embeddings, overrides, NNBSP
    (0x205F, 0x206F),   // MEDIUM MATHEMATICAL SPACE … NOMINAL DIGIT SHAPES
    (0x2800, 0x2800),   // BRAILLE PATTERN BLANK
    (0x3000, 0x3000),   // IDEOGRAPHIC SPACE
    (0x3164, 0x3164),   // HANGUL FILLER
    (0xFE00, 0xFE0F),   // VARIATION SELECTORS
    (0xFEFF, 0xFEFF),   // ZERO WIDTH NO-BREAK SPACE
    (0xFFA0, 0xFFA0),   // HALFWIDTH HANGUL FILLER
    (0xFFF9, 0xFFFB),   // INTERLINEAR ANNOTATION controls
    (0x1D173, 0x1D17A), // MUSICAL SYMBOL BEGIN BEAM … END PHRASE
    (0xE0000, 0xE007F), // TAGS
    (0xE0100, 0xE01EF), // VARIATION SELECTORS SUPPLEMENT
];

/// Whether `c` is in the invisible set ([`INVISIBLE`], listed in CONSENSUS.md §11).
pub fn is_invisible(c: char) -> bool {
    let c = c as u32;
    INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A post must hold at most MAX_POST_BYTES bytes of UTF-8, no bidirectional formatting
/// control ([`is_bidi_control`]), and at least one character outside the invisible set
/// ([`is_invisible`]): what a post displays is what it carries. Both sets are fixed lists of
/// code points, not Unicode property tables, so no implementation's Unicode version can
/// change consensus.
pub fn check_post_text(text: &str) -> Result<(), TxError> {
    if text.len() > MAX_POST_BYTES {
        return Err(TxError::PostTooLong {
            len: text.len(),
            max: MAX_POST_BYTES,
        });
    }
    if let Some((offset, c)) = text.char_indices().find(|&(_, c)| is_bidi_control(c)) {
        return Err(TxError::PostBidiControl {
            offset,
            code_point: c as u32,
        });
    }
    if text.chars().all(is_invisible) {
        return Err(TxError::EmptyPost);
    }
    Ok(())
}
