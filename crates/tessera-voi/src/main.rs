//! `tessera-voi`: see the crate documentation.

use clap::Parser;

fn main() {
    let cli = tessera_voi::Cli::parse();
    match tessera_voi::run(&cli) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("tessera-voi: {e}");
            std::process::exit(2);
        }
    }
}
