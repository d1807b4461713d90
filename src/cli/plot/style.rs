//! Colours, markers and text shared by the plots.

use plotters::chart::MeshStyle;
use plotters::coord::CoordTranslate;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const FONT: &str = "sans-serif";

/// One colour per party (and per strategy in tournament bars): the
/// matplotlib "tab10" colours minus red, which marks agreements.
pub const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
pub const AGREEMENT: RGBColor = RGBColor(214, 39, 40);
pub const NASH: RGBColor = RGBColor(255, 200, 0);
pub const KALAI: RGBColor = RGBColor(0, 128, 128);
/// The missed joint gain: a deal on the frontier better for everyone.
pub const JOINT_GAIN: RGBColor = RGBColor(44, 160, 44);
pub const FRONTIER: RGBColor = RGBColor(30, 30, 30);
pub const CLOUD: RGBColor = RGBColor(160, 170, 190);
pub const DISAGREEMENT: RGBColor = RGBColor(90, 90, 90);
pub const TEXT: RGBColor = RGBColor(20, 20, 20);
pub const MUTED: RGBColor = RGBColor(90, 90, 90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Dot,
    Circle,
    Triangle,
    Square,
    Diamond,
    /// A hollow square, thick.
    Frame,
    Cross,
    /// A thick ring with a dot: the agreement.
    Ring,
}

/// Each party's offer marker.
pub const PARTY_MARKERS: [Marker; 4] = [Marker::Circle, Marker::Triangle, Marker::Square, Marker::Diamond];

pub fn party_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws `marker` of radius `r` pixels at `at` (in the area's coordinates).
pub fn marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    m: Marker,
    color: RGBColor,
    r: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    CT::From: Clone,
{
    let outline = |pts: &[(i32, i32)]| {
        let mut v = pts.to_vec();
        v.push(pts[0]);
        v
    };
    let at2 = at.clone();
    match m {
        Marker::Dot => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), r, color.filled()))),
        Marker::Circle => {
            area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), r, color.filled())))?;
            area.draw(&(EmptyElement::at(at2) + Circle::new((0, 0), r, WHITE.stroke_width(1))))
        }
        Marker::Triangle => {
            let pts = [(0, -r - 1), (r + 1, r), (-r - 1, r)];
            area.draw(&(EmptyElement::at(at) + Polygon::new(pts.to_vec(), color.filled())))?;
            area.draw(&(EmptyElement::at(at2) + PathElement::new(outline(&pts), WHITE.stroke_width(1))))
        }
        Marker::Square => {
            let pts = [(-r, -r), (r, -r), (r, r), (-r, r)];
            area.draw(&(EmptyElement::at(at) + Polygon::new(pts.to_vec(), color.filled())))?;
            area.draw(&(EmptyElement::at(at2) + PathElement::new(outline(&pts), WHITE.stroke_width(1))))
        }
        Marker::Diamond => {
            let q = r + r / 3;
            let pts = [(0, -q), (q, 0), (0, q), (-q, 0)];
            area.draw(&(EmptyElement::at(at) + Polygon::new(pts.to_vec(), color.filled())))?;
            area.draw(&(EmptyElement::at(at2) + PathElement::new(outline(&pts), BLACK.stroke_width(1))))
        }
        Marker::Frame => {
            let pts = [(-r, -r), (r, -r), (r, r), (-r, r)];
            area.draw(&(EmptyElement::at(at) + PathElement::new(outline(&pts), color.stroke_width(3))))
        }
        Marker::Cross => {
            let style = color.stroke_width(3);
            area.draw(&(EmptyElement::at(at) + PathElement::new(vec![(-r, -r), (r, r)], style)))?;
            area.draw(&(EmptyElement::at(at2) + PathElement::new(vec![(-r, r), (r, -r)], style)))
        }
        Marker::Ring => {
            area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), r, color.stroke_width(3))))?;
            area.draw(&(EmptyElement::at(at2) + Circle::new((0, 0), (r / 4).max(2), color.filled())))
        }
    }
}

/// The axes and grid of every negotium chart (`plot`'s utility space, the
/// training curve): 14 px tick labels, 17 px axis titles, a light grid at
/// the labelled ticks only. Callers add their ticks, formatters and titles.
pub fn mesh<'a, 'b, DB, X, Y, XT, YT>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = XT> + ValueFormatter<XT>,
    Y: Ranged<ValueType = YT> + ValueFormatter<YT>,
{
    let mut m = chart.configure_mesh();
    m.axis_desc_style(font(17.0))
        .label_style(font(14.0))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(WHITE.mix(0.0));
    m
}

/// Text style: `size` in SVG pixels.
pub fn font<'a>(size: f64) -> TextStyle<'a> {
    // plotters writes font-size = size / 1.24 into SVG.
    TextStyle::from((FONT, size * 1.24).into_font()).color(&TEXT)
}

pub fn bold<'a>(size: f64) -> TextStyle<'a> {
    TextStyle::from((FONT, size * 1.24).into_font().style(FontStyle::Bold)).color(&TEXT)
}

pub fn left(style: TextStyle<'_>) -> TextStyle<'_> {
    style.pos(Pos::new(HPos::Left, VPos::Center))
}

pub fn left_top(style: TextStyle<'_>) -> TextStyle<'_> {
    style.pos(Pos::new(HPos::Left, VPos::Top))
}

/// Splits `text` into lines of at most `width` characters, at spaces.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// At most `width` characters, with an ellipsis where cut.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// `(0.712, 0.690)`.
pub fn pair(x: f64, y: f64) -> String {
    format!("({x:.3}, {y:.3})")
}

/// 43,008.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
