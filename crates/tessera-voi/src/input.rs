//! CSV tables: a header of names, then rows of finite numbers, validated before use.

use std::io::Read;

use tessera::TesseraError;

/// Largest CSV file read (bytes).
pub const MAX_FILE_BYTES: u64 = 8 << 30;

/// A table read from CSV: column names and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// The header's names, in order.
    pub names: Vec<String>,
    /// Row-major values, `rows × names.len()`.
    pub values: Vec<f64>,
    /// Number of data rows.
    pub rows: usize,
}

impl CsvTable {
    /// The index of column `name`.
    pub fn column(&self, file: &str, name: &str) -> Result<usize, TesseraError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| TesseraError::Format {
                file: file.into(),
                line: 1,
                message: format!(
                    "no column named {name:?}; the header has {}",
                    quoted(&self.names)
                ),
            })
    }

    /// The columns `indices`, row-major.
    pub fn select(&self, indices: &[usize]) -> Vec<f64> {
        let c = self.names.len();
        (0..self.rows)
            .flat_map(|i| indices.iter().map(move |&j| (i, j)))
            .map(|(i, j)| self.values[i * c + j])
            .collect()
    }
}

fn quoted(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(20).map(|n| format!("{n:?}")).collect();
    let more = names.len().saturating_sub(20);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Cuts `text` to at most `max` characters for an error message (whole characters).
fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn format_error(file: &str, line: usize, message: String) -> TesseraError {
    TesseraError::Format {
        file: file.into(),
        line,
        message,
    }
}

/// Parses CSV `data` (named `file` in errors): a header of distinct, non-empty
/// names, then at least one row of as many finite numbers.
pub fn parse(file: &str, data: &[u8]) -> Result<CsvTable, TesseraError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(data);
    let header = reader
        .headers()
        .map_err(|e| format_error(file, 1, format!("unreadable header: {e}")))?
        .clone();
    let names: Vec<String> = header.iter().map(str::to_owned).collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(format_error(
            file,
            1,
            "no header (expected column names)".into(),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(format_error(
                file,
                1,
                format!("column {} has no name", i + 1),
            ));
        }
        if names[..i].contains(name) {
            return Err(format_error(
                file,
                1,
                format!("column {name:?} appears twice"),
            ));
        }
    }
    let mut values = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            format_error(file, line, format!("{e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        for (j, cell) in record.iter().enumerate() {
            let value: f64 = cell.parse().map_err(|_| {
                format_error(
                    file,
                    line,
                    format!(
                        "column {:?}: {:?} is not a number",
                        names[j],
                        excerpt(cell, 40)
                    ),
                )
            })?;
            if !value.is_finite() {
                return Err(format_error(
                    file,
                    line,
                    format!("column {:?}: {cell:?} is not finite", names[j]),
                ));
            }
            values.push(value);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(format_error(
            file,
            2,
            "no data rows after the header".into(),
        ));
    }
    Ok(CsvTable {
        names,
        values,
        rows,
    })
}

/// Reads and parses the CSV file at `path`, refusing files over [`MAX_FILE_BYTES`].
pub fn read(path: &str) -> Result<CsvTable, TesseraError> {
    let io = |e: std::io::Error| TesseraError::Io {
        file: path.into(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(TesseraError::Format {
            file: path.into(),
            line: 0,
            message: format!("{size} bytes, over the limit of {MAX_FILE_BYTES}"),
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    parse(path, &data)
}
