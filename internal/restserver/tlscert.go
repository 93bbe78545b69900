package restserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage/rest"
)

// The self-signed certificate is kept in this subdirectory of the served
// directory; its name starts with a dot, so no repository path reaches it.
const (
	certDirName  = ".bunker-serve"
	certFileName = "tls-cert.pem"
	keyFileName  = "tls-key.pem"
	certValidity = 10 * 365 * 24 * time.Hour
)

// Fingerprint returns the SHA-256 fingerprint of a certificate (DER) in
// the form BUNKER_REST_FINGERPRINT takes: "sha256:<hex>".
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return rest.FormatFingerprint(sum[:])
}

// loadCert loads a certificate and key from PEM files.
func loadCert(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// selfSignedCert loads the self-signed certificate kept in dir, or makes
// one (ECDSA P-256, valid for ten years, for localhost, the loopback
// addresses and hosts) and keeps it there, so its fingerprint stays the
// same across restarts. It reports whether it made a new one.
func selfSignedCert(dir string, hosts []string, now time.Time) (tls.Certificate, bool, error) {
	cdir := filepath.Join(dir, certDirName)
	certFile, keyFile := filepath.Join(cdir, certFileName), filepath.Join(cdir, keyFileName)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case err == nil:
		if c.Leaf != nil && now.Before(c.Leaf.NotAfter) {
			return c, false, nil
		}
		// Expired: make a new one below.
	case errors.Is(err, fs.ErrNotExist):
	default:
		return tls.Certificate{}, false, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
	}
	certPEM, keyPEM, err := makeCert(hosts, now)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("make TLS certificate: %w", err)
	}
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("keep TLS certificate: %w", err)
	}
	// The key first: a certificate without its key is of no use.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("keep TLS key: %w", err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("keep TLS certificate: %w", err)
	}
	c, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("make TLS certificate: %w", err)
	}
	return c, true, nil
}

func makeCert(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bunker serve", Organization: []string{"bunker"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that BUNKER_REST_CA=<this certificate> works too
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() && !ip.IsLoopback() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
