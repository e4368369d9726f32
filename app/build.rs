//! Rebuilds the app when a migration is added: `sqlx::migrate!` embeds the folders at compile
//! time but does not watch them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
