//! From SVG to PNG. Plots are drawn once, as SVG (plotters); resvg rasterises
//! that SVG, so the PNG shows exactly what the SVG does. Text needs a font:
//! it is read at run time from `NEGOTIUM_FONT` or from a few well-known
//! paths, without the system's fontconfig. Without a font the PNG is still
//! written, without its text, and a warning says so.

use std::path::{Path, PathBuf};

use resvg::{tiny_skia, usvg};

/// PNG pixels per SVG unit: sharp text on high-density screens and in print.
pub const PNG_SCALE: f32 = 2.0;

/// Regular and bold faces, most common first (Debian/Ubuntu, Fedora, Arch,
/// Alpine, macOS, Windows).
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
    "C:\\Windows\\Fonts\\arialbd.ttf",
];

/// Turns SVG text into PNG bytes with the fonts found once.
pub struct Rasterizer {
    options: usvg::Options<'static>,
    /// The font files in use; empty when none was found.
    pub fonts: Vec<PathBuf>,
}

impl Rasterizer {
    /// Loads fonts: the file `NEGOTIUM_FONT` names (and only it, when set),
    /// else every well-known file that exists, stopping at the first family
    /// that loads (its regular and bold faces).
    pub fn new() -> Self {
        let candidates: Vec<PathBuf> = match std::env::var_os("NEGOTIUM_FONT") {
            Some(p) if !p.is_empty() => vec![PathBuf::from(p)],
            _ => FONT_FILES.iter().map(PathBuf::from).collect(),
        };
        let mut options = usvg::Options::default();
        let mut fonts = Vec::new();
        let mut family: Option<String> = None;
        let db = options.fontdb_mut();
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let before = db.len();
            db.load_font_data(bytes);
            if db.len() == before {
                continue;
            }
            let name = db.faces().last().and_then(|f| f.families.first()).map(|(n, _)| n.clone());
            match (&family, name) {
                (None, Some(n)) => {
                    family = Some(n);
                    fonts.push(path);
                }
                (Some(f), Some(n)) if *f == n => fonts.push(path),
                _ => {}
            }
            if fonts.len() >= 2 {
                break;
            }
        }
        if let Some(f) = &family {
            db.set_sans_serif_family(f.clone());
            db.set_serif_family(f.clone());
            db.set_monospace_family(f.clone());
            options.font_family = f.clone();
        }
        Self { options, fonts }
    }

    /// A warning for the user when no font was found; `None` otherwise.
    pub fn warning(&self) -> Option<String> {
        if !self.fonts.is_empty() {
            return None;
        }
        let what = match std::env::var_os("NEGOTIUM_FONT") {
            Some(p) if !p.is_empty() => {
                format!("NEGOTIUM_FONT={} is not a readable font file", Path::new(&p).display())
            }
            _ => "no TrueType font found in the usual places (e.g. /usr/share/fonts/truetype/dejavu)".to_string(),
        };
        Some(format!(
            "{what}: PNG files are written without text (the SVG files have it). \
             Set NEGOTIUM_FONT=/path/to/font.ttf or install fonts-dejavu-core."
        ))
    }

    /// PNG bytes of `svg`, scaled by [`PNG_SCALE`] on a white background.
    pub fn png(&self, svg: &str) -> Result<Vec<u8>, String> {
        // Without a font, text would only make the parser complain, once per label.
        let svg = if self.fonts.is_empty() { without_text(svg) } else { svg.to_string() };
        let tree = usvg::Tree::from_str(&svg, &self.options).map_err(|e| format!("cannot read the SVG: {e}"))?;
        let size = tree.size();
        let (w, h) = ((size.width() * PNG_SCALE).ceil() as u32, (size.height() * PNG_SCALE).ceil() as u32);
        let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot make a {w}×{h} image"))?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(&tree, tiny_skia::Transform::from_scale(PNG_SCALE, PNG_SCALE), &mut pixmap.as_mut());
        pixmap.encode_png().map_err(|e| format!("cannot encode the PNG: {e}"))
    }
}

/// `svg` less its `<text>` elements.
fn without_text(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</text>") {
            Some(end) => rest = &rest[start + end + "</text>".len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_text;

    #[test]
    fn strips_text_elements_only() {
        let svg = r#"<svg><rect/><text x="1">a &lt; b</text><circle/><text>c</text></svg>"#;
        assert_eq!(without_text(svg), "<svg><rect/><circle/></svg>");
    }
}
