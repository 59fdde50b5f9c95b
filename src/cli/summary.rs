//! `fovea summary MODEL`: the Keras-style table of a zoo model.

/// Prints the summary of the zoo model `name`.
pub fn run(name: &str) -> anyhow::Result<()> {
    let model = fovea_models::zoo::by_name(name, 0)?;
    print!("{}", model.summary());
    Ok(())
}
