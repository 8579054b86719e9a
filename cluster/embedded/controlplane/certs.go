package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// pki holds the paths of every credential kept in the state directory.
type pki struct {
	dir         string
	caCert      string
	caKey       string
	servingCert string
	servingKey  string
	adminCert   string
	adminKey    string
	saKey       string // private key: signs service-account tokens
	saPub       string // public key: verifies them
	kubeconfig  string
	ca          *x509.Certificate
	caSigner    crypto.Signer
}

func newPKI(stateDir string) *pki {
	d := filepath.Join(stateDir, "pki")
	return &pki{
		dir:         d,
		caCert:      filepath.Join(d, "ca.crt"),
		caKey:       filepath.Join(d, "ca.key"),
		servingCert: filepath.Join(d, "apiserver.crt"),
		servingKey:  filepath.Join(d, "apiserver.key"),
		adminCert:   filepath.Join(d, "admin.crt"),
		adminKey:    filepath.Join(d, "admin.key"),
		saKey:       filepath.Join(d, "sa.key"),
		saPub:       filepath.Join(d, "sa.pub"),
		kubeconfig:  filepath.Join(stateDir, "kubeconfig"),
	}
}

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 2 * 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

// ensure creates what is missing and reuses what exists. The serving certificate
// is re-issued when it no longer covers the requested names/addresses or is about
// to expire; everything else is kept as long as it parses.
func (p *pki) ensure(servingIPs []net.IP, servingDNS []string) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if err := p.ensureCA(); err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	if !p.leafValid(p.servingCert, p.servingKey, servingIPs, servingDNS) {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses: servingIPs,
			DNSNames:    servingDNS,
		}
		if err := p.issue(tmpl, p.servingCert, p.servingKey); err != nil {
			return fmt.Errorf("serving certificate: %w", err)
		}
	}
	if !p.leafValid(p.adminCert, p.adminKey, nil, nil) {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if err := p.issue(tmpl, p.adminCert, p.adminKey); err != nil {
			return fmt.Errorf("admin certificate: %w", err)
		}
	}
	if _, err := readKey(p.saKey); err != nil || !fileExists(p.saPub) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		if err := writeKey(p.saKey, key); err != nil {
			return err
		}
		der, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			return err
		}
		if err := writePEM(p.saPub, "PUBLIC KEY", der, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (p *pki) ensureCA() error {
	cert, certErr := readCert(p.caCert)
	key, keyErr := readKey(p.caKey)
	if certErr == nil && keyErr == nil && time.Until(cert.NotAfter) > renewBefore {
		p.ca, p.caSigner = cert, key
		return nil
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "kube-embedded-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeKey(p.caKey, caKey); err != nil {
		return err
	}
	if err := writePEM(p.caCert, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	// A new CA invalidates every leaf signed by the old one.
	for _, f := range []string{p.servingCert, p.servingKey, p.adminCert, p.adminKey} {
		_ = os.Remove(f)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caSigner = caKey
	return nil
}

// leafValid reports whether certFile/keyFile exist, match, were signed by our CA,
// are not about to expire and cover the wanted IPs and DNS names.
func (p *pki) leafValid(certFile, keyFile string, ips []net.IP, dns []string) bool {
	cert, err := readCert(certFile)
	if err != nil {
		return false
	}
	key, err := readKey(keyFile)
	if err != nil {
		return false
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return false
	}
	if cert.CheckSignatureFrom(p.ca) != nil || time.Until(cert.NotAfter) < renewBefore {
		return false
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	for _, n := range dns {
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

func (p *pki) issue(tmpl *x509.Certificate, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl.SerialNumber = randSerial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(leafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caSigner)
	if err != nil {
		return err
	}
	if err := writeKey(keyFile, key); err != nil {
		return err
	}
	return writePEM(certFile, "CERTIFICATE", der, 0o644)
}

// writeKubeconfig (re)writes the admin kubeconfig with embedded credentials.
// It is rewritten on every start so that a changed --port is picked up.
func (p *pki) writeKubeconfig(server string) error {
	caPEM, err := os.ReadFile(p.caCert)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(p.adminCert)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.adminKey)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kube-embedded"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["kube-embedded"] = &clientcmdapi.Context{Cluster: "kube-embedded", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "kube-embedded"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return writeFileAtomic(p.kubeconfig, data, 0o600)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no certificate in " + path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in " + path)
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("unsupported key in " + path)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q in %s", block.Type, path)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
