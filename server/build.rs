//! Generates the gRPC code and the descriptor set served by reflection.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    // A vendored protoc, so a build needs nothing installed beyond Rust.
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(true)
        // Undecodable requests are INVALID_ARGUMENT (see src/grpc_codec.rs).
        .codec_path("crate::grpc_codec::ApiCodec")
        .file_descriptor_set_path(out.join("emitgate_descriptor.bin"))
        .compile_with_config(config, &["../proto/emitgate/v1/emitter.proto"], &["../proto"])?;
    Ok(())
}
