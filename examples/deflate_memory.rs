//! Prints the heap bytes of one permessage-deflate context as the zlib in use allocates them
//! (counted through our zalloc/zfree), for every window size and a few memory levels:
//! `cargo run --release --example deflate_memory`.

use wsembed::protocol::deflate::measure_state_bytes;

fn main() {
    let levels = [1u8, 2, 4, 6, 8, 9];
    print!("deflate bytes  ");
    for m in levels {
        print!("{:>12}", format!("memLevel {m}"));
    }
    println!();
    for bits in 9..=15u8 {
        print!("window {bits:>2}      ");
        for m in levels {
            print!("{:>12}", measure_state_bytes(Some((bits, m))));
        }
        println!("   formula(m8) {}", (1usize << (bits + 2)) + (1 << 17));
    }
    println!("inflate (window 15, after a message): {} bytes", measure_state_bytes(None));
}
