package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/test/testenv"
)

const sshdPath = "/usr/sbin/sshd"

// sshServer is a real OpenSSH sshd on a loopback port, serving git through its normal
// command execution (git-upload-pack '<path>') to one throwaway client key.
type sshServer struct {
	addr       string // 127.0.0.1:port
	user       string
	clientKey  string // private key accepted by the server
	knownHosts string // the server's host key, as known_hosts
}

func startSSHD(t testing.TB) *sshServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts sshd; not run with -short")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("%s is missing (hack/test-deps.sh installs openssh-server): %v", sshdPath, err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation directory, which
		// Debian's package leaves to the init system to create.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	hostKey := sshKeygen(t, dir, "host_key", "")
	clientKey := sshKeygen(t, dir, "client_key", "")
	copyFile(t, clientKey+".pub", filepath.Join(dir, "authorized_keys"))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, port, _ := net.SplitHostPort(addr)

	config := filepath.Join(dir, "sshd_config")
	writeFile(t, config, strings.Join([]string{
		"Port " + port,
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + u.Username,
		"LogLevel VERBOSE",
		"",
	}, "\n"))
	var stderr bytes.Buffer
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", config)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", stderr.String())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("sshd exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s within 10s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, fmt.Sprintf("[127.0.0.1]:%s %s", port, pub))
	return &sshServer{addr: addr, user: u.Username, clientKey: clientKey, knownHosts: knownHosts}
}

func (s *sshServer) url(repoDir string) string {
	return "ssh://" + s.user + "@" + s.addr + repoDir
}

// sshKeygen makes a throwaway ed25519 key pair and returns the private key's path.
func sshKeygen(t testing.TB, dir, name, passphrase string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return p
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// TestSSH clones over a real sshd with a key and known_hosts, then polls without fetching.
func TestSSH(t *testing.T) {
	srv := startSSHD(t)
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	s := newSource(t, Options{URL: srv.url(remote.Dir), Auth: Auth{SSHKeyFile: srv.clientKey, KnownHostsFile: srv.knownHosts}})

	snap, _ := poll(t, s)
	if snap.Commit != c1 || readFile(t, snap, "a.yaml") != "a: 1\n" {
		t.Fatalf("poll = %s, want %s", snap.Commit, c1)
	}
	c2 := remote.Commit("two", map[string]string{"a.yaml": "a: 2\n"})
	if snap, changed := poll(t, s); snap.Commit != c2 || !changed {
		t.Fatalf("poll after a commit = %s, want %s", snap.Commit, c2)
	}
	poll(t, s)
	wantStats(t, s, 3, 2, 0)
}

// TestSSHErrors: an unknown or changed host key, a key the server does not accept, and
// missing or locked key material each give their own clear error.
func TestSSHErrors(t *testing.T) {
	srv := startSSHD(t)
	remote := testenv.NewGitRepo(t)
	remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(srv.addr)

	otherKey := sshKeygen(t, dir, "other", "")
	otherPub, err := os.ReadFile(otherKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hostPub, err := os.ReadFile(srv.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	unknownHost := filepath.Join(dir, "unknown_host")
	writeFile(t, unknownHost, "[127.0.0.2]:"+port+" "+strings.SplitN(string(hostPub), " ", 2)[1])
	changedHost := filepath.Join(dir, "changed_host")
	writeFile(t, changedHost, "[127.0.0.1]:"+port+" "+string(otherPub))
	lockedKey := sshKeygen(t, dir, "locked", "correct horse")

	for _, tc := range []struct {
		name string
		auth Auth
		want error
		msg  string
	}{
		{"unknown host key", Auth{SSHKeyFile: srv.clientKey, KnownHostsFile: unknownHost}, ErrUnknownHostKey, "host key verification failed"},
		{"changed host key", Auth{SSHKeyFile: srv.clientKey, KnownHostsFile: changedHost}, ErrUnknownHostKey, "host key verification failed"},
		{"wrong client key", Auth{SSHKeyFile: otherKey, KnownHostsFile: srv.knownHosts}, ErrAuthentication, "authentication failed"},
		{"no known_hosts", Auth{SSHKeyFile: srv.clientKey}, ErrCredentials, "need both sshKeyFile and knownHostsFile"},
		{"no key", Auth{KnownHostsFile: srv.knownHosts}, ErrCredentials, "need both sshKeyFile and knownHostsFile"},
		{"locked key without passphrase", Auth{SSHKeyFile: lockedKey, KnownHostsFile: srv.knownHosts}, ErrCredentials, "is encrypted and no sshPassphraseFile is set"},
		{"wrong passphrase", Auth{SSHKeyFile: lockedKey, SSHPassphraseFile: secretFile(t, "wrong"), KnownHostsFile: srv.knownHosts}, ErrCredentials, "with its passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, Options{URL: srv.url(remote.Dir), Auth: tc.auth})
			snap, _, err := s.Poll(context.Background())
			if !errors.Is(err, tc.want) || !snap.IsZero() {
				t.Fatalf("Poll = %+v, %v; want zero snapshot and %v", snap, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), srv.url(remote.Dir)) {
				t.Errorf("error = %q, want it to name the URL and say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "correct horse") {
				t.Errorf("error shows the passphrase: %v", err)
			}
		})
	}
}

// TestSSHEncryptedKey unlocks a passphrase-protected key with the passphrase file.
func TestSSHEncryptedKey(t *testing.T) {
	srv := startSSHD(t)
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	dir := t.TempDir()
	key := sshKeygen(t, dir, "locked", "correct horse")
	// Accept the locked key too.
	authorized := filepath.Join(filepath.Dir(srv.clientKey), "authorized_keys")
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(authorized, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pub); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s := newSource(t, Options{URL: srv.url(remote.Dir), Auth: Auth{
		SSHKeyFile: key, SSHPassphraseFile: secretFile(t, "correct horse\n"), KnownHostsFile: srv.knownHosts,
	}})
	if snap, _ := poll(t, s); snap.Commit != c1 {
		t.Fatalf("poll = %s, want %s", snap.Commit, c1)
	}
}
