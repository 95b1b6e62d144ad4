//! `layer-hash`: the byte work of an image: layer tarballs hashed in one pass, the image config
//! and the registry manifest.
//!
//! Its input is one enum, `inputs::layer_hash::Mode`: a subcommand from a shell, or, run as a
//! Nix builder with no arguments, the structured attribute `mode` and that mode's attributes,
//! read into the same enum. All the work is in the library (`tarball`, `digest`, `manifest`);
//! this file runs the mode and reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use nix_image_layers::accounts;
use nix_image_layers::archive::LoadScript;
use nix_image_layers::attrs::{self, Attrs};
use nix_image_layers::compress::LayerDigests;
use nix_image_layers::customisation::{self, Declarations};
use nix_image_layers::digest::digest_file;
use nix_image_layers::index;
use nix_image_layers::inputs::layer_hash::{
    BlobArgs, Cli, CustomisationArgs, HashArgs, IndexArgs, IndexOciLayoutArgs, LayerArgs, LayoutArgs, LoadArchiveArgs,
    LoadScriptArgs, ManifestArgs, Mode, OciLayoutArgs, SbomArgs, TextArgs,
};
use nix_image_layers::layering::human_size;
use nix_image_layers::manifest::{self, BlobRecord, Format, ImageMeta};
use nix_image_layers::output::{read_file, write_output};
use nix_image_layers::perms::PermSpec;
use nix_image_layers::referrers::Attachment;
use nix_image_layers::sbom::{Bom, Subject};
use nix_image_layers::tarball;
use nix_image_layers::{Error, Result};

fn main() -> ExitCode {
    let start = std::time::Instant::now();
    let mode = if std::env::args_os().len() == 1 && attrs::present() {
        Attrs::load(&attrs::default_path()).and_then(|a| Mode::from_attrs(&a))
    } else {
        Ok(Cli::parse().mode)
    };
    match mode.and_then(run) {
        Ok(()) => {
            nix_image_layers::report::finished("layer-hash", start);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("layer-hash: error: {}", nix_image_layers::error::one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run(mode: Mode) -> Result<()> {
    match mode {
        Mode::Layer(LayerArgs { blob, store_dir, perms, paths }) => {
            if paths.is_empty() {
                return Err(Error::Usage("no store paths to pack (argument PATHS, attribute `paths`): a layer needs store paths".into()));
            }
            let store = tarball::store_dir(store_dir.as_deref());
            let d = store_layer(&blob, &store, &paths, &perms.0)?;
            finish_layer(&blob, d)
        }
        Mode::Customisation(CustomisationArgs { blob, users, groups, dirs, contents }) => {
            let declarations = Declarations { dirs: dirs.0, files: accounts::files(&users.0, &groups.0)? };
            let d = customisation_layer(&blob, &contents, &declarations)?;
            finish_layer(&blob, d)
        }
        Mode::Manifest(args) => write_manifest(args),
        Mode::Layout(LayoutArgs { manifest, out }) => layout(&manifest, &out),
        Mode::OciLayout(OciLayoutArgs { manifest, tag, sbom, out }) => {
            let output = read_manifest_output(&manifest)?;
            let attachments: Vec<Attachment> = sbom
                .iter()
                .flat_map(|dir| {
                    [("application/spdx+json", "spdx.json"), ("application/vnd.cyclonedx+json", "cyclonedx.json")]
                        .map(|(t, f)| Attachment { artifact_type: t.into(), file: dir.join(f), title: f.into() })
                })
                .collect();
            nix_image_layers::archive::write_oci_layout(&out, &output, &tag, &attachments)?;
            eprintln!(
                "laid out {} blobs in {} (OCI image layout, tag {tag}; {} documents attached)",
                output.manifest.layers.len() + 2,
                out.display(),
                attachments.len()
            );
            Ok(())
        }
        Mode::LoadScript(args) => load_script(&args),
        Mode::LoadArchive(LoadArchiveArgs { out, script }) => load_archive(&script, &out),
        Mode::Index(IndexArgs { out, layout, manifests }) => {
            let (format, images) = index::read_images(&manifests)?;
            let bytes = index::index_bytes(format, &images);
            if let Some(dir) = &layout {
                index::write_dir_layout(dir, &bytes, &images)?;
            }
            write_output(&out, &bytes)?;
            let platforms: Vec<String> = images.iter().map(|i| i.platform.to_string()).collect();
            eprintln!("wrote the {} of {} images ({})", index::index_media_type(format), images.len(), platforms.join(", "));
            Ok(())
        }
        Mode::IndexOciLayout(IndexOciLayoutArgs { tag, out, manifests }) => {
            let (format, images) = index::read_images(&manifests)?;
            if format != Format::Oci {
                return Err(Error::Usage("an OCI image layout of an index needs images of the OCI format (format = \"oci\")".into()));
            }
            index::write_oci_layout(&out, &index::index_bytes(format, &images), &images, &tag)?;
            eprintln!("laid out the index of {} images in {} (OCI image layout, tag {tag})", images.len(), out.display());
            Ok(())
        }
        Mode::Sbom(args) => sbom(args),
        Mode::Text(TextArgs { out, text }) => write_output(&out, text.as_bytes()),
        Mode::Hash(HashArgs { out, files }) => {
            let records = files
                .iter()
                .map(|f| Ok(BlobRecord::new(digest_file(f)?, f.display().to_string())))
                .collect::<Result<Vec<_>>>()?;
            write_output(&out, &json_line(&records))
        }
    }
}

fn store_layer(blob: &BlobArgs, store: &Path, paths: &[PathBuf], perms: &[PermSpec]) -> Result<LayerDigests> {
    let start = Instant::now();
    let rules = if perms.is_empty() { String::new() } else { format!(", {} perms rules", perms.len()) };
    eprintln!("packing {} store paths into {} ({}{rules})", paths.len(), blob.out.display(), blob.compression.name());
    let d = tarball::pack_store_layer(&blob.out, store, paths, perms, blob.mtime, blob.compression)?;
    log_done(&blob.out, &d, start);
    Ok(d)
}

fn customisation_layer(blob: &BlobArgs, contents: &[PathBuf], declarations: &Declarations) -> Result<LayerDigests> {
    let start = Instant::now();
    let (d, report) = customisation::pack_customisation_layer(&blob.out, contents, declarations, blob.mtime, blob.compression)?;
    for c in &report.conflicts {
        eprintln!("warning: customisation layer: {c}");
    }
    eprintln!(
        "linked {} packages at /: {} symlinks in {} directories, {} conflicts; {} declared files and directories",
        contents.len(),
        report.links,
        report.dirs,
        report.conflicts.len(),
        report.declared
    );
    log_done(&blob.out, &d, start);
    Ok(d)
}

fn log_done(out: &Path, d: &LayerDigests, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({}) sha256:{} in {:.2} s ({:.0} MB/s)",
        out.display(),
        human_size(d.blob.size),
        d.blob.sha256,
        secs,
        d.blob.size as f64 / secs.max(1e-9) / 1e6
    );
}

/// Writes the layer's record, if asked, and prints its {"sha256", "md5", "size"} (and, when
/// compressed, "diffId"): one line of JSON.
fn finish_layer(blob: &BlobArgs, d: LayerDigests) -> Result<()> {
    let record = BlobRecord::of_layer(d, blob.compression, absolute(&blob.out)?.display().to_string());
    if let Some(record_file) = &blob.record {
        write_output(record_file, &manifest::to_json(&record))?;
    }
    #[derive(serde::Serialize)]
    struct Printed<'a> {
        sha256: &'a str,
        md5: &'a str,
        size: u64,
        #[serde(rename = "diffId", skip_serializing_if = "Option::is_none")]
        diff_id: Option<&'a str>,
    }
    print_json(&Printed { sha256: &record.sha256, md5: &record.md5, size: record.size, diff_id: record.diff_id.as_deref() })
}

/// An output's absolute path, as records and layerLocations name files.
fn absolute(out: &Path) -> Result<PathBuf> {
    std::path::absolute(out).map_err(|source| Error::Write { path: out.to_path_buf(), source })
}

fn read_manifest_output(manifest_file: &Path) -> Result<manifest::ManifestOutput> {
    serde_json::from_slice(&read_file(manifest_file)?).map_err(|source| Error::Json { path: manifest_file.to_path_buf(), source })
}

/// The script is `#!<this program> load-archive` and, on the next line, the image and name as
/// JSON ([`LoadScript`]): run, the kernel starts this program with the script's path, and nothing
/// else is needed (no shell), nothing copied into the store.
fn load_script(args: &LoadScriptArgs) -> Result<()> {
    read_manifest_output(&args.manifest)?;
    let exe = std::env::current_exe().map_err(|source| Error::Read { path: "/proc/self/exe".into(), source })?;
    let script = LoadScript { manifest: args.manifest.clone(), image_name: args.image_name.clone(), tag: args.tag.clone() };
    write_output(&args.out, &script.text(&exe))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&args.out, std::fs::Permissions::from_mode(0o555)).map_err(|source| Error::Write { path: args.out.clone(), source })?;
    eprintln!("wrote {}: run it to stream {}:{} to docker load or podman load", args.out.display(), args.image_name, args.tag);
    Ok(())
}

fn load_archive(script_file: &Path, out: &Path) -> Result<()> {
    let s = LoadScript::parse(script_file, &read_file(script_file)?)?;
    let output = read_manifest_output(&s.manifest)?;
    let write = |file| nix_image_layers::archive::write_load_archive(file, &output, &s.image_name, &s.tag, &s.manifest);
    let bytes = if out == Path::new("-") {
        use std::os::fd::AsFd;
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|source| Error::Write { path: out.to_path_buf(), source })?;
        write(std::fs::File::from(stdout))?.0
    } else {
        // A file appears whole or not at all.
        let (staged, file) = nix_image_layers::output::Staged::create(out)?;
        let (bytes, file) = write(file)?;
        staged.commit(file)?;
        bytes
    };
    eprintln!("streamed {}:{} ({} layers, {})", s.image_name, s.tag, output.manifest.layers.len(), human_size(bytes));
    Ok(())
}

fn layout(manifest_file: &Path, out: &Path) -> Result<()> {
    let output = read_manifest_output(manifest_file)?;
    manifest::write_dir_layout(out, &output)?;
    eprintln!("laid out {} blobs in {} (skopeo dir: format)", output.manifest.layers.len() + 1, out.display());
    Ok(())
}

/// Reads layer records, in order, from files holding one record or a list of them.
fn read_records(files: &[PathBuf]) -> Result<Vec<BlobRecord>> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(BlobRecord),
        Many(Vec<BlobRecord>),
    }
    let mut all = Vec::new();
    for f in files {
        match serde_json::from_slice(&read_file(f)?) {
            Ok(OneOrMany::One(r)) => all.push(r),
            Ok(OneOrMany::Many(rs)) => all.extend(rs),
            Err(_) => {
                return Err(Error::Invalid { path: f.clone(), what: "not a layer record {size, sha256, md5, path} or a list of them".into() });
            }
        }
    }
    Ok(all)
}

fn write_manifest(args: ManifestArgs) -> Result<()> {
    let ManifestArgs { out, config, config_path, image_system, format, image_config, created, history, annotations, layers: record_files } = args;
    let config_path = match config_path {
        Some(p) => p,
        None => absolute(&config)?.display().to_string(),
    };
    let meta = ImageMeta { created: created.map(|c| c.rfc3339()).transpose()?, history, annotations: annotations.0 };
    let layers = read_records(&record_files)?;
    let config_bytes = manifest::image_config(&layers, &image_system, image_config.0, &meta)?;
    let output = manifest::manifest_output(&layers, &config_bytes, &config_path, format, &meta)?;
    write_output(&config, &config_bytes)?;
    write_output(&out, &manifest::to_json(&output))?;
    eprintln!("wrote the manifest of {} layers ({}) and the image config", layers.len(), human_size(layers.iter().map(|l| l.size).sum()));
    Ok(())
}

fn sbom(args: SbomArgs) -> Result<()> {
    let bom = Bom::read(&args.graph, &read_file(&args.graph)?, &args.meta.0)?;
    let subject = Subject { name: args.image_name, created: args.created.rfc3339()? };
    let (spdx, cyclonedx) = (bom.spdx(&subject)?, bom.cyclonedx(&subject)?);
    nix_image_layers::output::new_dir(&args.out, |werr| {
        let (s, c) = (args.out.join("spdx.json"), args.out.join("cyclonedx.json"));
        std::fs::write(&s, &spdx).map_err(werr(s.clone()))?;
        std::fs::write(&c, &cyclonedx).map_err(werr(c.clone()))
    })?;
    let edges: usize = bom.packages.iter().map(|p| p.references.len()).sum();
    eprintln!(
        "wrote the SBOMs of {} ({} packages, {} roots, {} dependency edges, {} with licenses) to {}",
        subject.name,
        bom.packages.len(),
        bom.roots.len(),
        edges,
        bom.packages.iter().filter(|p| !p.licenses.is_empty()).count(),
        args.out.display()
    );
    Ok(())
}

/// Prints a value as one line of JSON.
fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    write_output(Path::new("-"), &json_line(v))
}

fn json_line<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).expect("serialises");
    bytes.push(b'\n');
    bytes
}
