//! # tessera-voi
//!
//! Value of information from the command line, over CSV files of a probabilistic
//! sensitivity analysis (one row per draw), on the GPU or the CPU:
//!
//! ```text
//! tessera-voi evpi nb.csv                                   # net benefits, one column per strategy
//! tessera-voi evpi ce.csv --wtp 0:50000:500                 # cost_<s>, effect_<s> columns, a grid
//! tessera-voi evppi nb.csv params.csv --group a,b --group c
//! tessera-voi evppi ce.csv params.csv --group a,b --wtp 20000,30000 --metamodel gam
//! tessera-voi evsi nb.csv summaries.csv --study n50 --study n100
//! tessera-voi population --population 10000 --rate 0.035 --horizon 10
//! ```
//!
//! Without `--wtp`, every column of the outcomes file is a strategy's net benefit,
//! named by the header. With `--wtp`, the file holds `cost_<name>` and
//! `effect_<name>` for every strategy and the analysis runs at every value of the
//! grid in one pass. `--json` prints machine-readable results; `--device` (or
//! `TESSERA_DEVICE`) picks `auto`, `gpu` or `cpu`. Semantics: `docs/voi.md`.

pub mod input;

use clap::{Parser, Subcommand};
use serde_json::json;
use tessera::voi::{
    Discounting, Evpi, Evppi, EvppiOptions, Metamodel, Outcomes, Table, Voi, VoiWarning,
    population_factor,
};
use tessera::{Device, Preference, TesseraError};

use input::CsvTable;

/// Largest willingness-to-pay grid.
const MAX_GRID: usize = 65_535;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "tessera-voi",
    version,
    about = "Value of information over CSV files"
)]
pub struct Cli {
    /// Where to compute: auto (a hardware GPU if there is one), gpu or cpu.
    #[arg(long, global = true)]
    pub device: Option<String>,
    /// Print JSON instead of a text table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to compute.
    #[command(subcommand)]
    pub command: Command,
}

/// The analyses.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Expected value of perfect information (and the acceptability of each strategy).
    Evpi {
        /// Outcomes CSV: net benefits, or `cost_<s>`/`effect_<s>` columns with `--wtp`.
        outcomes: String,
        /// Willingness-to-pay values: a list (20000,30000) or a range (start:stop:step).
        #[arg(long)]
        wtp: Option<String>,
    },
    /// Expected value of partial perfect information of parameter groups.
    Evppi {
        /// Outcomes CSV.
        outcomes: String,
        /// Parameters CSV, one row per draw.
        params: String,
        /// A group of parameter names, comma-separated; repeat for several groups.
        #[arg(long, required = true)]
        group: Vec<String>,
        /// Willingness-to-pay values (list or start:stop:step).
        #[arg(long)]
        wtp: Option<String>,
        /// auto, linear, poly2, poly3, gam, gp, strong-oakley or sadatsafavi.
        #[arg(long, default_value = "auto")]
        metamodel: String,
        /// Posterior draws of the metamodel for standard errors.
        #[arg(long, default_value_t = 0)]
        draws: usize,
        /// Seed of the posterior draws.
        #[arg(long, default_value_t = 0x766f_6900)]
        seed: u64,
    },
    /// Expected value of sample information by regression on study summaries.
    Evsi {
        /// Outcomes CSV.
        outcomes: String,
        /// Summary statistics CSV, one row per draw.
        summaries: String,
        /// The summary columns of one study design, comma-separated; repeat for
        /// several designs (default: every column, one design).
        #[arg(long)]
        study: Vec<String>,
        /// Willingness-to-pay values (list or start:stop:step).
        #[arg(long)]
        wtp: Option<String>,
        /// auto, linear, poly2, poly3 or gam.
        #[arg(long, default_value = "auto")]
        metamodel: String,
    },
    /// The factor that scales a per-person value to a population.
    Population {
        /// People affected per year.
        #[arg(long, default_value_t = 1.0)]
        population: f64,
        /// Discount rate per year (0.035 for 3.5%).
        #[arg(long)]
        rate: f64,
        /// Years.
        #[arg(long)]
        horizon: f64,
        /// Continuous discounting instead of the yearly annuity.
        #[arg(long)]
        continuous: bool,
    },
}

fn bad(what: &'static str, value: &str, expected: &str) -> TesseraError {
    TesseraError::InvalidConfig {
        field: what,
        value: value.into(),
        expected: expected.into(),
    }
}

/// Parses a grid: `a,b,c` or `start:stop:step` (inclusive, step > 0).
pub fn parse_grid(text: &str) -> Result<Vec<f64>, TesseraError> {
    let number = |s: &str| -> Result<f64, TesseraError> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad("--wtp", s, "finite numbers"))
    };
    let grid: Vec<f64> = if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        let [start, stop, step] = parts[..] else {
            return Err(bad("--wtp", text, "start:stop:step"));
        };
        let (start, stop, step) = (number(start)?, number(stop)?, number(step)?);
        if !(step > 0.0 && stop >= start) {
            return Err(bad("--wtp", text, "start <= stop and step > 0"));
        }
        let count = ((stop - start) / step + 1e-9).floor() + 1.0;
        if count > MAX_GRID as f64 {
            return Err(bad("--wtp", text, "at most 65535 values"));
        }
        (0..count as usize)
            .map(|i| start + step * i as f64)
            .collect()
    } else {
        text.split(',').map(number).collect::<Result<_, _>>()?
    };
    if grid.is_empty() || grid.len() > MAX_GRID {
        return Err(bad("--wtp", text, "1 to 65535 values"));
    }
    Ok(grid)
}

fn parse_metamodel(text: &str) -> Result<Metamodel, TesseraError> {
    Ok(match text {
        "auto" => Metamodel::Auto,
        "linear" => Metamodel::Linear,
        "poly2" => Metamodel::Polynomial { degree: 2 },
        "poly3" => Metamodel::Polynomial { degree: 3 },
        "gam" => Metamodel::Gam,
        "strong-oakley" => Metamodel::StrongOakley { blocks: None },
        "sadatsafavi" => Metamodel::Sadatsafavi { separators: 1 },
        "gp" => Metamodel::GaussianProcess {
            fit_rows: tessera::voi::DEFAULT_GP_FIT_ROWS,
        },
        _ => {
            return Err(bad(
                "--metamodel",
                text,
                "auto, linear, poly2, poly3, gam, gp, strong-oakley or sadatsafavi",
            ));
        }
    })
}

/// The outcomes file as tables: strategy names, and net benefits or costs and effects.
struct OutcomeData {
    strategies: Vec<String>,
    first: Vec<f64>,
    second: Vec<f64>,
    rows: usize,
    wtp: Option<Vec<f64>>,
}

impl OutcomeData {
    fn load(path: &str, wtp: Option<&str>) -> Result<Self, TesseraError> {
        let table = input::read(path)?;
        let Some(wtp) = wtp else {
            return Ok(Self {
                strategies: table.names.clone(),
                first: table.values,
                second: Vec::new(),
                rows: table.rows,
                wtp: None,
            });
        };
        let wtp = parse_grid(wtp)?;
        let mut strategies = Vec::new();
        for name in &table.names {
            if let Some(s) = name.strip_prefix("cost_") {
                strategies.push(s.to_owned());
            } else if name.strip_prefix("effect_").is_none() {
                return Err(TesseraError::Format {
                    file: path.into(),
                    line: 1,
                    message: format!(
                        "column {name:?}: with --wtp every column is cost_<strategy> or effect_<strategy>"
                    ),
                });
            }
        }
        let mut costs = Vec::new();
        let mut effects = Vec::new();
        for s in &strategies {
            costs.push(table.column(path, &format!("cost_{s}"))?);
            effects.push(table.column(path, &format!("effect_{s}"))?);
        }
        if 2 * strategies.len() != table.names.len() {
            return Err(TesseraError::Format {
                file: path.into(),
                line: 1,
                message: "every effect_<strategy> column needs its cost_<strategy>".into(),
            });
        }
        Ok(Self {
            first: table.select(&costs),
            second: table.select(&effects),
            strategies,
            rows: table.rows,
            wtp: Some(wtp),
        })
    }

    fn outcomes(&self) -> Result<Outcomes<'_>, TesseraError> {
        let d = self.strategies.len();
        Ok(match &self.wtp {
            None => Outcomes::NetBenefit(Table::new("net benefits", &self.first, self.rows, d)?),
            Some(wtp) => Outcomes::CostEffect {
                costs: Table::new("costs", &self.first, self.rows, d)?,
                effects: Table::new("effects", &self.second, self.rows, d)?,
                wtp,
            },
        })
    }

    fn grid(&self) -> Vec<Option<f64>> {
        match &self.wtp {
            None => vec![None],
            Some(w) => w.iter().copied().map(Some).collect(),
        }
    }
}

fn device(cli: &Cli) -> Result<Device, TesseraError> {
    let preference = match cli.device.as_deref() {
        None => Preference::from_env()?,
        Some("auto") => Preference::Auto,
        Some("gpu") => Preference::Gpu,
        Some("cpu") => Preference::Cpu,
        Some(other) => return Err(bad("--device", other, "auto, gpu or cpu")),
    };
    Ok(Device::with_preference_blocking(preference))
}

/// Resolves comma-separated names against a header.
fn groups(file: &str, table: &CsvTable, specs: &[String]) -> Result<Vec<Vec<usize>>, TesseraError> {
    specs
        .iter()
        .map(|spec| {
            spec.split(',')
                .map(|name| table.column(file, name.trim()))
                .collect()
        })
        .collect()
}

fn evpi_report(cli: &Cli, data: &OutcomeData, points: &[Evpi]) -> String {
    let grid = data.grid();
    if cli.json {
        let rows: Vec<_> = points
            .iter()
            .zip(&grid)
            .map(|(p, k)| {
                json!({
                    "wtp": k,
                    "evpi": p.evpi,
                    "best": data.strategies[p.best],
                    "probability_optimal": p.probability_optimal,
                })
            })
            .collect();
        return json!({ "strategies": data.strategies, "results": rows }).to_string() + "\n";
    }
    let mut out = String::new();
    let header: Vec<String> = data.strategies.iter().map(|s| format!("P({s})")).collect();
    out += &format!("wtp\tevpi\tbest\t{}\n", header.join("\t"));
    for (p, k) in points.iter().zip(&grid) {
        let probs: Vec<String> = p
            .probability_optimal
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect();
        let k = k.map_or("-".into(), |k| format!("{k}"));
        out += &format!(
            "{k}\t{:.10}\t{}\t{}\n",
            p.evpi,
            data.strategies[p.best],
            probs.join("\t")
        );
    }
    out
}

fn evppi_report(cli: &Cli, data: &OutcomeData, names: &[String], results: &[Evppi]) -> String {
    let grid = data.grid();
    let label = |r: &Evppi| -> String {
        r.group
            .iter()
            .map(|&c| names[c].as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let warning = |w: &VoiWarning| match w {
        VoiWarning::ExceedsEvpi { index, evppi, evpi } => {
            format!("EVPPI {evppi} exceeds EVPI {evpi} at grid value {index}")
        }
        VoiWarning::ManyTerms { terms, draws } => {
            format!("{terms} metamodel terms on {draws} draws (fewer than 10 a term)")
        }
    };
    if cli.json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                json!({
                    "group": label(r),
                    "metamodel": format!("{:?}", r.metamodel),
                    "terms": r.terms,
                    "wtp": grid,
                    "evppi": r.values,
                    "evpi": r.evpi,
                    "standard_errors": r.standard_errors,
                    "within_bounds": r.within_bounds(),
                    "warnings": r.warnings.iter().map(warning).collect::<Vec<_>>(),
                })
            })
            .collect();
        return json!({ "results": rows }).to_string() + "\n";
    }
    let mut out = String::from("group\twtp\tevppi\tse\tevpi\n");
    for r in results {
        for (i, k) in grid.iter().enumerate() {
            let se = r
                .standard_errors
                .as_ref()
                .map_or("-".into(), |s| format!("{:.6}", s[i]));
            let k = k.map_or("-".into(), |k| format!("{k}"));
            out += &format!(
                "{}\t{k}\t{:.10}\t{se}\t{:.10}\n",
                label(r),
                r.values[i],
                r.evpi[i]
            );
        }
        for w in &r.warnings {
            out += &format!("# warning ({}): {}\n", label(r), warning(w));
        }
    }
    out
}

/// Runs one command and returns what it prints.
pub fn run(cli: &Cli) -> Result<String, TesseraError> {
    match &cli.command {
        Command::Population {
            population,
            rate,
            horizon,
            continuous,
        } => {
            let d = if *continuous {
                Discounting::Continuous
            } else {
                Discounting::Discrete
            };
            let f = population_factor(*population, *rate, *horizon, d)?;
            Ok(if cli.json {
                json!({ "population_factor": f }).to_string() + "\n"
            } else {
                format!("{f}\n")
            })
        }
        Command::Evpi { outcomes, wtp } => {
            let data = OutcomeData::load(outcomes, wtp.as_deref())?;
            let mut voi = Voi::on(&device(cli)?)?;
            let points = voi.evpi(&data.outcomes()?)?;
            Ok(evpi_report(cli, &data, &points))
        }
        Command::Evppi {
            outcomes,
            params,
            group,
            wtp,
            metamodel,
            draws,
            seed,
        } => {
            let data = OutcomeData::load(outcomes, wtp.as_deref())?;
            let p = input::read(params)?;
            let groups = groups(params, &p, group)?;
            let options = EvppiOptions {
                metamodel: parse_metamodel(metamodel)?,
                posterior_draws: *draws,
                seed: *seed,
            };
            let table = Table::new("parameters", &p.values, p.rows, p.names.len())?;
            let refs: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
            let mut voi = Voi::on(&device(cli)?)?;
            let results = voi.evppi(&data.outcomes()?, &table, &refs, &options)?;
            Ok(evppi_report(cli, &data, &p.names, &results))
        }
        Command::Evsi {
            outcomes,
            summaries,
            study,
            wtp,
            metamodel,
        } => {
            let data = OutcomeData::load(outcomes, wtp.as_deref())?;
            let s = input::read(summaries)?;
            let specs = if study.is_empty() {
                vec![s.names.join(",")]
            } else {
                study.clone()
            };
            let groups = groups(summaries, &s, &specs)?;
            let options = EvppiOptions {
                metamodel: parse_metamodel(metamodel)?,
                ..EvppiOptions::default()
            };
            let table = Table::new("summaries", &s.values, s.rows, s.names.len())?;
            let refs: Vec<&[usize]> = groups.iter().map(Vec::as_slice).collect();
            let mut voi = Voi::on(&device(cli)?)?;
            let results = voi.evppi(&data.outcomes()?, &table, &refs, &options)?;
            Ok(evppi_report(cli, &data, &s.names, &results))
        }
    }
}
