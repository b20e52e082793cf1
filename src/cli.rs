//! The command line: `run` (default), `migrate`, `keygen`, `rotate-keys`, `doctor`,
//! `manifest`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Source};

#[derive(Parser)]
#[command(version, about = "Slack-first follow-up assistant for sales teams")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to Slack and serve (the default).
    Run,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print a new ENCRYPTION_KEY.
    Keygen,
    /// Re-seal every stored credential with the current ENCRYPTION_KEY, so the keys in
    /// ENCRYPTION_KEYS_PREVIOUS can be removed.
    RotateKeys,
    /// Check every configured integration and print a table; non-zero exit when a required
    /// check fails.
    Doctor,
    /// Print the Slack app manifest.
    Manifest,
}

pub fn main() -> ExitCode {
    // One TLS provider for the whole process (ring), before anything opens a connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Keygen => {
            println!("{}", crate::crypto::generate_key());
            ExitCode::SUCCESS
        }
        Command::Manifest => {
            print!("{}", crate::slack::manifest::MANIFEST);
            ExitCode::SUCCESS
        }
        Command::Doctor => runtime().block_on(crate::doctor::run(&Source::from_env_and_dotenv())),
        Command::Migrate => {
            let config = match load() {
                Ok(config) => config,
                Err(code) => return code,
            };
            runtime().block_on(async {
                match config.database.open().await {
                    Ok(store) => {
                        println!("database is up to date ({})", store.backend());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        Command::RotateKeys => {
            let config = match load() {
                Ok(config) => config,
                Err(code) => return code,
            };
            runtime().block_on(rotate_keys(&config))
        }
        Command::Run => {
            let config = match load() {
                Ok(config) => config,
                Err(code) => return code,
            };
            runtime().block_on(async {
                let running = match crate::startup::start(config, crate::features::all()).await {
                    Ok(running) => running,
                    Err(e) => {
                        tracing::error!(error = ?e, "could not start");
                        eprintln!("error: {e:#}");
                        return ExitCode::FAILURE;
                    }
                };
                crate::startup::shutdown_signal().await;
                running.shutdown();
                running.stopped().await;
                ExitCode::SUCCESS
            })
        }
    }
}

async fn rotate_keys(config: &Config) -> ExitCode {
    let result = async {
        let store = config.database.open().await?;
        let cipher = config.encryption.cipher()?;
        let counts = store.reseal_credentials(&cipher).await?;
        store.close().await;
        anyhow::Ok((cipher.key_id(), counts))
    }
    .await;
    match result {
        Ok((key_id, (resealed, 0))) => {
            println!(
                "{resealed} credential(s) re-sealed with key {key_id}; every credential now uses \
                 it, so ENCRYPTION_KEYS_PREVIOUS can be emptied"
            );
            ExitCode::SUCCESS
        }
        Ok((key_id, (resealed, unreadable))) => {
            println!(
                "{resealed} credential(s) re-sealed with key {key_id}; {unreadable} could not be \
                 opened with any configured key (their owners must connect again)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load() -> Result<Config, ExitCode> {
    match Config::load(&Source::from_env_and_dotenv()) {
        Ok(config) => {
            config.log.init();
            Ok(config)
        }
        Err(problems) => {
            eprintln!("error: {problems}");
            Err(ExitCode::from(2))
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}
