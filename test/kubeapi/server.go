package kubeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/toolbin"
)

// Identities the API server knows (token authentication).
const (
	// AdminUser is in system:masters: it may do anything.
	AdminUser = "admin"
	// MedicNamespace and MedicServiceAccount are the ServiceAccount the
	// manifests in deploy/rbac bind; MedicUser is the user name the API
	// server gives its tokens, which RBAC matches.
	MedicNamespace      = "medic"
	MedicServiceAccount = "medic"
	MedicUser           = "system:serviceaccount:" + MedicNamespace + ":" + MedicServiceAccount

	readyTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
	startTries   = 4
)

// Cluster is a running etcd and kube-apiserver owned by one test.
type Cluster struct {
	URL    string
	caPEM  []byte
	tokens map[string]string // user → bearer token
	etcd   *toolbin.Proc
	api    *toolbin.Proc
}

// Start runs etcd and kube-apiserver on free loopback ports with RBAC
// authorization and token authentication, and returns once /readyz answers.
// Both stop in t.Cleanup; on failure their output goes to the test log.
// The binaries are built first when missing (see Binaries).
func Start(t testing.TB) *Cluster {
	t.Helper()
	bins, err := Binaries()
	if err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	dir := t.TempDir()
	pki, err := writePKI(dir)
	if err != nil {
		t.Fatalf("kubeapi: certificates: %v", err)
	}
	c := &Cluster{caPEM: pki.caPEM, tokens: map[string]string{
		AdminUser: randomToken(),
		MedicUser: randomToken(),
	}}
	tokenFile := filepath.Join(dir, "tokens.csv")
	lines := []string{
		fmt.Sprintf("%s,%s,%s,\"system:masters\"", c.tokens[AdminUser], AdminUser, AdminUser),
		fmt.Sprintf("%s,%s,%s,\"system:serviceaccounts,system:serviceaccounts:%s\"", c.tokens[MedicUser], MedicUser, "medic-uid", MedicNamespace),
	}
	if err := os.WriteFile(tokenFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("kubeapi: %v", err)
	}

	var lastErr error
	for try := 1; try <= startTries; try++ {
		lastErr = c.launch(bins, dir, pki, tokenFile, try)
		if lastErr == nil {
			t.Cleanup(func() {
				c.Stop()
				if t.Failed() {
					t.Logf("kubeapi: kube-apiserver output (tail):\n%s", c.api.Output())
					t.Logf("kubeapi: etcd output (tail):\n%s", c.etcd.Output())
				}
			})
			return c
		}
		c.Stop()
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
		t.Logf("kubeapi: start attempt %d: port taken; retrying on others", try)
	}
	t.Fatalf("kubeapi: did not start: %v", lastErr)
	return nil
}

func (c *Cluster) launch(bins Paths, dir string, pki *pkiFiles, tokenFile string, try int) error {
	ports, err := testkit.FreePorts(3)
	if err != nil {
		return err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.etcd, err = toolbin.StartProc("etcd", exec.Command(bins.Etcd,
		"--name=medic-test",
		"--data-dir="+filepath.Join(dir, fmt.Sprintf("etcd-%d", try)),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=medic-test="+peerURL,
		"--unsafe-no-fsync", "--log-level=warn",
	), 16<<10)
	if err != nil {
		return err
	}
	if err := c.etcd.WaitHTTP(clientURL+"/health", nil, readyTimeout); err != nil {
		return fmt.Errorf("etcd: %w\n%s", err, c.etcd.Output())
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	c.api, err = toolbin.StartProc("kube-apiserver", exec.Command(bins.APIServer,
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		// As kubeadm and managed clusters do: node_bash_enricher's debug pod
		// is privileged, like `kubectl debug node`'s.
		"--allow-privileged=true",
		"--anonymous-auth=false",
		// No controller-manager runs, so nothing creates the default
		// ServiceAccount the admission plugin would insist on.
		"--disable-admission-plugins=ServiceAccount",
		"--v=0",
	), 16<<10)
	if err != nil {
		return err
	}
	hc := c.httpClient(c.tokens[AdminUser])
	if err := c.api.WaitHTTP(c.URL+"/readyz", hc, readyTimeout); err != nil {
		return fmt.Errorf("kube-apiserver: %w\n%s", err, c.api.Output())
	}
	return nil
}

// Stop terminates kube-apiserver, then etcd.
func (c *Cluster) Stop() {
	if c.api != nil {
		c.api.Stop(stopTimeout)
	}
	if c.etcd != nil {
		c.etcd.Stop(stopTimeout)
	}
}

// Admin is a rest.Config for a cluster administrator (system:masters).
func (c *Cluster) Admin() *rest.Config { return c.config(c.tokens[AdminUser]) }

// Medic is a rest.Config with the credentials of the ServiceAccount
// medic/medic: what it may do is exactly what the RBAC objects the test
// applied grant (deploy/rbac), nothing more.
func (c *Cluster) Medic() *rest.Config { return c.config(c.tokens[MedicUser]) }

func (c *Cluster) config(token string) *rest.Config {
	return &rest.Config{
		Host:            c.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.caPEM},
		QPS:             100,
		Burst:           200,
	}
}

func (c *Cluster) httpClient(token string) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.caPEM)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &bearer{token: token, rt: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}},
	}
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func typesUID(s string) types.UID { return types.UID(s) }

// --- certificates, made in-process with Go's crypto ----------------------

type pkiFiles struct {
	caPEM                 []byte
	caCert                string
	serverCert, serverKey string
	saKey, saPub          string
}

func writePKI(dir string) (*pkiFiles, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "medic-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	f := &pkiFiles{
		caPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		caCert:     filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		saKey:      filepath.Join(dir, "sa.key"),
		saPub:      filepath.Join(dir, "sa.pub"),
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		f.caCert:     f.caPEM,
		f.serverCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		f.serverKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		f.saKey:      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		f.saPub:      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// WriteKubeconfig writes a kubeconfig for user (AdminUser or MedicUser) to
// path, as `medic serve` would be given one.
func (c *Cluster) WriteKubeconfig(path, user string) error {
	token, ok := c.tokens[user]
	if !ok {
		return fmt.Errorf("kubeapi: no user %q", user)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s}
current-context: test
`, c.URL, base64.StdEncoding.EncodeToString(c.caPEM), user, token, user)
	return os.WriteFile(path, []byte(kc), 0o600)
}
