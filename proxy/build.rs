//! The static release link (proxy/link/ordered-link.sh) reads
//! link/order.txt, which cargo cannot see: relink when it changes.
fn main() {
    println!("cargo:rerun-if-changed=link/order.txt");
}
