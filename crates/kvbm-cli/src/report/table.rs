//! A minimal aligned text table and number formatting.

/// Rows of cells printed with aligned columns (first column left-aligned,
/// the others right-aligned).
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: Vec<S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row after a header and a rule.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        let line = |row: &Vec<String>| {
            let cells: Vec<String> = (0..cols)
                .map(|i| {
                    let cell = row.get(i).map(String::as_str).unwrap_or("");
                    if i == 0 {
                        format!("{cell:<w$}", w = width[i])
                    } else {
                        format!("{cell:>w$}", w = width[i])
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// A fraction as a percentage with two decimals (`0.1355` → `13.55%`).
pub fn format_rate(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

/// A number with an SI suffix (`4_100_000` → `4.10M`).
pub fn format_si(x: f64) -> String {
    let (v, unit) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if unit.is_empty() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(vec!["policy", "hit"]);
        t.row(vec!["lru".into(), "13.55%".into()]);
        t.row(vec!["belady".into(), "5%".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "policy     hit");
        assert_eq!(lines[2], "lru     13.55%");
        assert_eq!(lines[3], "belady      5%");
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(format_rate(0.1355), "13.55%");
        assert_eq!(format_si(4_100_000.0), "4.10M");
        assert_eq!(format_si(12.4), "12");
        assert_eq!(format_si(3_000_000_000.0), "3.00G");
    }
}
