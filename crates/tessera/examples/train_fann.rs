//! Trains a FANN network file on a FANN data file with the settings the network file
//! carries, on the best device, as libfann's `fann_train_on_file` would:
//!
//! ```sh
//! cargo run --release -p tessera --example train_fann -- NET DATA [OUT] [--epochs N] [--error E]
//! ```
//!
//! Prints the MSE every 100 epochs and writes the trained net to OUT (default
//! `trained.net`). `TESSERA_DEVICE=cpu` or `=gpu` chooses the device.

use std::process::ExitCode;

use tessera::Device;
use tessera::nn::{Model, TrainConfig, Trainer, fann};

struct Args {
    net: String,
    data: String,
    out: String,
    epochs: usize,
    error: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut epochs, mut error) = (5000, 0.001);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--epochs" => {
                epochs = value("--epochs")?
                    .parse()
                    .map_err(|_| "--epochs takes a whole number".to_string())?
            }
            "--error" => {
                error = value("--error")?
                    .parse::<f64>()
                    .ok()
                    .filter(|e| e.is_finite() && *e >= 0.0)
                    .ok_or("--error takes a finite number >= 0")?
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let usage = "usage: train_fann NET DATA [OUT] [--epochs N] [--error E]";
    Ok(Args {
        net: positional.next().ok_or(usage)?,
        data: positional.next().ok_or(usage)?,
        out: positional.next().unwrap_or_else(|| "trained.net".into()),
        epochs,
        error,
    })
}

fn run(args: &Args) -> tessera::Result<()> {
    let (net, settings) = fann::read_net(&args.net)?;
    let data = fann::read_data(&args.data)?;
    let device = Device::new_blocking();
    println!(
        "training {:?} on {} samples, on {}",
        net.sizes(),
        data.len(),
        device.describe()
    );
    let mut trainer = Trainer::new(
        Model::on(&device, &net)?,
        TrainConfig::from_fann(&settings)?,
    )?;
    let stats = trainer.train_until(&data, args.epochs, args.error, |s| {
        if s.epoch % 100 == 0
            && let Some(mse) = s.mse
        {
            println!("epoch {:>6}  MSE {mse:.6}", s.epoch);
        }
        true
    })?;
    println!(
        "stopped after epoch {} with MSE {:?}, bit fail {:?}",
        stats.epoch, stats.mse, stats.bit_fail
    );
    fann::write_net(&args.out, &trainer.to_network()?, &settings)?;
    println!("wrote {}", args.out);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
