//! `palisade config`: every configuration key, its default and meaning.

pub fn run() -> anyhow::Result<()> {
    for (section, keys) in crate::config::SECTIONS {
        println!("# {section}");
        for k in *keys {
            println!("{:<26} {:<24} {}", k.name, if k.default.is_empty() { "-" } else { k.default }, k.help);
        }
    }
    Ok(())
}
