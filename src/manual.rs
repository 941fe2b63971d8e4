//! Shell completions and the man page (parse stage, no run): generated from the clap
//! definitions of [`crate::cli::Cli`], so they can never disagree with the parser.
//!
//! `tenantgate completions bash|zsh|fish|elvish|powershell` prints a completion script;
//! `tenantgate man` prints the roff man page (`tenantgate man > tenantgate.1`).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The exit codes, shown at the end of `--help` and in the man page.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  isolation proven: nothing failed or errored, and at least one check ran
  1  isolation broken: a proven leak, an accepted forgery or an unsound database setting (nothing else)
  2  undecided: a check could not be decided, bad suite or command line, interrupted, internal error";

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "tenantgate", out);
    out.flush()
}

/// Writes the man page (roff) of tenantgate and its subcommands to `out`.
pub fn man(out: &mut dyn Write) -> io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    // Each subcommand's options, so `man tenantgate` documents every flag.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SH \"TENANTGATE {}\"", sub.get_name().to_uppercase())?;
        let sub = sub
            .clone()
            .bin_name(format!("tenantgate {}", sub.get_name()));
        let m = clap_mangen::Man::new(sub);
        let mut buf = Vec::new();
        m.render_synopsis_section(&mut buf)?;
        m.render_options_section(&mut buf)?;
        // Subsections of this command's section, not top-level sections of the page.
        let text = String::from_utf8_lossy(&buf)
            .replace(".SH SYNOPSIS", ".SS Synopsis")
            .replace(".SH OPTIONS", ".SS Options");
        out.write_all(text.as_bytes())?;
    }
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for line in EXIT_CODES.lines().skip(1) {
        let line = line.trim();
        let (code, text) = line.split_once("  ").unwrap_or((line, ""));
        writeln!(out, ".TP\n\\fB{code}\\fR\n{}", text.trim())?;
    }
    man.render_version_section(out)?;
    out.flush()
}

/// Runs `completions` or `man` on stdout; a closed pipe (`| head`) is not an error.
pub fn print(what: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    let mut out = io::stdout().lock();
    match what(&mut out) {
        Ok(()) => crate::exit::PROVEN,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => crate::exit::PROVEN,
        Err(e) => {
            eprintln!("tenantgate: cannot write: {e}");
            crate::exit::UNDECIDED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_know_every_subcommand_and_report_flag() {
        let mut out = Vec::new();
        completions(Shell::Bash, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for word in [
            "run",
            "audit",
            "validate",
            "--sarif",
            "--html",
            "--attestation",
            "--reports",
        ] {
            assert!(
                text.contains(word),
                "{word} missing from the bash completions"
            );
        }
        for shell in [Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            assert!(!out.is_empty());
        }
    }

    #[test]
    fn help_ends_with_the_exit_codes() {
        let mut cmd = Cli::command();
        assert!(
            cmd.render_help()
                .to_string()
                .trim_end()
                .ends_with(EXIT_CODES)
        );
        for sub in ["run", "audit"] {
            let mut s = cmd.find_subcommand_mut(sub).unwrap().clone();
            assert!(
                s.render_help().to_string().contains("2  undecided"),
                "{sub}"
            );
        }
    }

    #[test]
    fn the_man_page_has_every_subcommand_and_the_exit_codes() {
        let mut out = Vec::new();
        man(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH tenantgate"),
            "{}",
            &text[..200]
        );
        for word in [
            "TENANTGATE RUN",
            "TENANTGATE AUDIT",
            "EXIT STATUS",
            "\\-\\-sarif",
            "isolation broken",
        ] {
            assert!(text.contains(word), "{word} missing from the man page");
        }
    }
}
