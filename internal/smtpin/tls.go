package smtpin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// TLSConfig returns the server TLS configuration for STARTTLS: the configured certificate and key, or, when
// none is configured, a self-signed certificate for hostname kept in dir (generated at first start, and again
// when the one kept does not name hostname, after the host name changed, or cannot be loaded).
// TLS 1.2 is the minimum.
func TLSConfig(certFile, keyFile, dir, hostname string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if certFile == "" {
		cert, err = selfSigned(filepath.Join(dir, "smtp-cert.pem"), filepath.Join(dir, "smtp-key.pem"), hostname)
	} else {
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// selfSigned loads the generated certificate kept in certFile and keyFile, and generates a new one for
// hostname when there is none, it does not load, or it does not name hostname. Both files are Easymail's own,
// so replacing them loses nothing.
func selfSigned(certFile, keyFile, hostname string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil && cert.Leaf != nil && cert.Leaf.VerifyHostname(hostname) == nil {
		return cert, nil
	}
	if err := writeSelfSigned(certFile, keyFile, hostname); err != nil {
		return tls.Certificate{}, fmt.Errorf("generate self-signed certificate: %w", err)
	}
	return tls.LoadX509KeyPair(certFile, keyFile)
}

func writeSelfSigned(certFile, keyFile, hostname string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hostname},
		DNSNames:     []string{hostname},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS13:
		return "TLS1.3"
	}
	return fmt.Sprintf("TLS(0x%04x)", v)
}

func cipherName(id uint16) string { return tls.CipherSuiteName(id) }
