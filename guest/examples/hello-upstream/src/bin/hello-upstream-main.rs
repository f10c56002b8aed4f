#[xxfunc::main]
async fn main(data: &[u8]) {
    println!("Hello, world from wasi!, exex notification data: {:?}", data);
}
