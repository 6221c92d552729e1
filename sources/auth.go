package sources

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// Auth names the files holding a repository's credentials. The files are read on every
// remote operation, so rotated secrets are picked up without a restart; their contents never
// appear in errors or logs.
type Auth struct {
	// UsernameFile and PasswordFile give HTTP basic auth.
	UsernameFile string
	PasswordFile string
	// TokenFile gives an HTTP access token, sent as the basic-auth password with the user of
	// UsernameFile, or "git" (accepted by Gitea, GitHub and GitLab).
	TokenFile string
	// SSHKeyFile is a private key for ssh:// URLs, optionally encrypted with the passphrase in
	// SSHPassphraseFile.
	SSHKeyFile        string
	SSHPassphraseFile string
	// KnownHostsFile lists the SSH host keys trusted for ssh:// URLs. An unknown or changed
	// host key is an error; ~/.ssh is never consulted.
	KnownHostsFile string
}

// tokenUser is the basic-auth user sent with a token when none is configured.
const tokenUser = "git"

// method builds the go-git auth for one operation against ep.
func (a Auth) method(ep *transport.Endpoint, timeout time.Duration) (transport.AuthMethod, error) {
	switch ep.Protocol {
	case "http", "https":
		return a.httpMethod()
	case "ssh":
		return a.sshMethod(ep, timeout)
	}
	return nil, nil
}

func (a Auth) httpMethod() (transport.AuthMethod, error) {
	var user string
	if a.UsernameFile != "" {
		u, err := readSecret("usernameFile", a.UsernameFile)
		if err != nil {
			return nil, err
		}
		user = u
	}
	switch {
	case a.TokenFile != "":
		token, err := readSecret("tokenFile", a.TokenFile)
		if err != nil {
			return nil, err
		}
		if user == "" {
			user = tokenUser
		}
		return &githttp.BasicAuth{Username: user, Password: token}, nil
	case a.PasswordFile != "":
		password, err := readSecret("passwordFile", a.PasswordFile)
		if err != nil {
			return nil, err
		}
		return &githttp.BasicAuth{Username: user, Password: password}, nil
	case user != "":
		return &githttp.BasicAuth{Username: user}, nil
	}
	return nil, nil
}

func (a Auth) sshMethod(ep *transport.Endpoint, timeout time.Duration) (transport.AuthMethod, error) {
	// Without both files go-git would fall back to an SSH agent and ~/.ssh/known_hosts.
	if a.SSHKeyFile == "" || a.KnownHostsFile == "" {
		return nil, fmt.Errorf("%w: ssh URLs need both sshKeyFile and knownHostsFile", ErrCredentials)
	}
	pem, err := os.ReadFile(a.SSHKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: reading sshKeyFile: %w", ErrCredentials, err)
	}
	var signer ssh.Signer
	if a.SSHPassphraseFile != "" {
		passphrase, err := readSecret("sshPassphraseFile", a.SSHPassphraseFile)
		if err != nil {
			return nil, err
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
		if err != nil {
			return nil, fmt.Errorf("%w: parsing sshKeyFile %s with its passphrase: %w", ErrCredentials, a.SSHKeyFile, err)
		}
	} else {
		signer, err = ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("%w: sshKeyFile %s is encrypted and no sshPassphraseFile is set", ErrCredentials, a.SSHKeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: parsing sshKeyFile %s: %w", ErrCredentials, a.SSHKeyFile, err)
		}
	}
	hosts, err := knownhosts.NewDB(a.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("%w: reading knownHostsFile: %w", ErrCredentials, err)
	}
	user := ep.User
	if user == "" {
		user = gitssh.DefaultUsername
	}
	port := ep.Port
	if port <= 0 {
		port = gitssh.DefaultPort
	}
	return &sshKeyAuth{
		user:         user,
		signer:       signer,
		hosts:        hosts,
		hostWithPort: net.JoinHostPort(ep.Host, strconv.Itoa(port)),
		timeout:      timeout,
	}, nil
}

// sshKeyAuth is go-git's ssh.PublicKeys without its fallbacks: the host key is checked only
// against the configured known_hosts, and the connection attempt is bounded by timeout.
type sshKeyAuth struct {
	user         string
	signer       ssh.Signer
	hosts        *knownhosts.HostKeyDB
	hostWithPort string
	timeout      time.Duration
}

var _ gitssh.AuthMethod = (*sshKeyAuth)(nil)

func (a *sshKeyAuth) Name() string   { return gitssh.PublicKeysName }
func (a *sshKeyAuth) String() string { return "user: " + a.user + ", name: " + a.Name() }

func (a *sshKeyAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:            a.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback: a.hosts.HostKeyCallback(),
		// Offer only the key types known_hosts holds for this host, or the server may present
		// another of its keys and fail verification although a good one is known.
		HostKeyAlgorithms: a.hosts.HostKeyAlgorithms(a.hostWithPort),
		Timeout:           a.timeout,
	}, nil
}

// readSecret reads a one-line secret file, dropping the trailing newline editors and
// `kubectl create secret --from-file` leave behind.
func readSecret(field, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: reading %s: %w", ErrCredentials, field, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%w: %s %s is empty", ErrCredentials, field, file)
	}
	return s, nil
}
