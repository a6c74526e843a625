//! Certificates for TLS tests, made afresh by each test: a CA, a server certificate it signed
//! for 127.0.0.1 and localhost, a client certificate it signed, and a second, unrelated CA.
//! PEM files in a folder of their own, removed on drop.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestCertificates {
    dir: PathBuf,
}

impl TestCertificates {
    pub fn generate() -> TestCertificates {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "redilock-certs-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let certificates = TestCertificates { dir };
        let ca = certificate_authority("redilock test CA");
        certificates.file("ca.pem", &ca.pem());
        let other_ca = certificate_authority("an unrelated CA");
        certificates.file("other-ca.pem", &other_ca.pem());
        for (name, names, purpose) in [
            (
                "server",
                vec!["127.0.0.1".to_string(), "localhost".to_string()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            ("client", vec![], ExtendedKeyUsagePurpose::ClientAuth),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("redilock test {name}"));
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &ca).unwrap();
            certificates.file(&format!("{name}.pem"), &cert.pem());
            certificates.file(&format!("{name}.key"), &key.serialize_pem());
        }
        certificates
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed neither.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// Writes `contents` to the file `name` of the folder (also for tests of bad files).
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}
