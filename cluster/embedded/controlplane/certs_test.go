package main

import (
	"bytes"
	"net"
	"os"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPKIReuseAndReissue(t *testing.T) {
	dir := t.TempDir()
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.244.0.1")}
	dns := []string{"localhost"}

	p := newPKI(dir)
	if err := p.ensure(ips, dns); err != nil {
		t.Fatal(err)
	}
	ca, serving, admin, sa := read(t, p.caCert), read(t, p.servingCert), read(t, p.adminCert), read(t, p.saKey)

	// Same inputs: everything is reused byte for byte.
	p2 := newPKI(dir)
	if err := p2.ensure(ips, dns); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]byte{
		"ca":      {ca, read(t, p.caCert)},
		"serving": {serving, read(t, p.servingCert)},
		"admin":   {admin, read(t, p.adminCert)},
		"sa":      {sa, read(t, p.saKey)},
	} {
		if !bytes.Equal(pair[0], pair[1]) {
			t.Errorf("%s was regenerated although nothing changed", name)
		}
	}

	// A new advertise address: only the serving certificate is re-issued.
	ips2 := append(ips, net.ParseIP("10.245.0.1"))
	p3 := newPKI(dir)
	if err := p3.ensure(ips2, dns); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(serving, read(t, p.servingCert)) {
		t.Error("serving certificate not re-issued for a new IP")
	}
	if !bytes.Equal(ca, read(t, p.caCert)) || !bytes.Equal(admin, read(t, p.adminCert)) {
		t.Error("CA or admin certificate changed when only the serving SANs changed")
	}
	cert, err := readCert(p.servingCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(p3.ca); err != nil {
		t.Errorf("serving cert not signed by CA: %v", err)
	}

	// The admin certificate is in system:masters and the kubeconfig embeds it.
	adminCert, err := readCert(p.adminCert)
	if err != nil {
		t.Fatal(err)
	}
	if len(adminCert.Subject.Organization) != 1 || adminCert.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin organization = %v", adminCert.Subject.Organization)
	}
	if err := p3.writeKubeconfig("https://127.0.0.1:7443"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(p.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	if c.Server != "https://127.0.0.1:7443" || !bytes.Equal(c.CertificateAuthorityData, ca) {
		t.Errorf("kubeconfig cluster = %+v", c)
	}
	if st, _ := os.Stat(p.kubeconfig); st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v", st.Mode().Perm())
	}
}

func TestFirstIP(t *testing.T) {
	for cidr, want := range map[string]string{"10.96.0.0/16": "10.96.0.1", "10.0.0.0/24": "10.0.0.1", "fd00::/108": "fd00::1"} {
		got, err := firstIP(cidr)
		if err != nil || got.String() != want {
			t.Errorf("firstIP(%s) = %v, %v; want %s", cidr, got, err, want)
		}
	}
}
