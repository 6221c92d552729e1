package applier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// ErrOutputLimit is why an Exec stopped: the command wrote more than the limit to stdout.
var ErrOutputLimit = errors.New("output over the limit")

// maxExecStderr is how much of a command's stderr an error quotes; the rest is dropped.
const maxExecStderr = 4 << 10

// restExecutor runs commands in pods through the API server's pods/exec, over WebSocket with
// a SPDY fallback, as kubectl does.
type restExecutor struct {
	config *rest.Config
	client kubernetes.Interface
}

// NewPodExecutor returns a PodExecutor for the cluster of cfg.
func NewPodExecutor(cfg *rest.Config) (PodExecutor, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("pod executor: %w", err)
	}
	return &restExecutor{config: cfg, client: cs}, nil
}

func (r *restExecutor) Exec(ctx context.Context, namespace, pod, container string, command []string, limit int) ([]byte, error) {
	req := r.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(r.config, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.config, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return nil, err
	}
	// Past the limit the stream is cancelled, which closes the connection: remotecommand
	// would otherwise keep reading (and discarding) a stdout that never ends, such as a
	// symlink to /dev/zero.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout := &limitedBuffer{limit: limit, over: cancel}
	stderr := &limitedBuffer{limit: maxExecStderr, truncate: true}
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr})
	out, exceeded := stdout.close()
	errOut, _ := stderr.close()
	if exceeded {
		return nil, fmt.Errorf("%v in pod %s/%s: stopped after %d bytes: %w", command, namespace, pod, limit, ErrOutputLimit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, bytes.TrimSpace(errOut))
	}
	return out, nil
}

// limitedBuffer keeps what a stream writes, up to limit bytes. A write past the limit either
// fails, after calling over once so that the stream stops at once, or (truncate) is cut to
// what fits and dropped silently. Once closed it takes nothing more: the stream's goroutines
// may outlive the call that read the buffer.
type limitedBuffer struct {
	limit    int
	truncate bool
	over     func()

	mu       sync.Mutex
	buf      bytes.Buffer
	exceeded bool
	closed   bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed || b.exceeded:
		return 0, ErrOutputLimit
	case b.buf.Len()+len(p) <= b.limit:
		return b.buf.Write(p)
	case b.truncate:
		b.buf.Write(p[:b.limit-b.buf.Len()])
		return len(p), nil
	}
	b.exceeded = true
	if b.over != nil {
		b.over()
	}
	return 0, ErrOutputLimit
}

// close returns what was kept and whether a write went past the limit.
func (b *limitedBuffer) close() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return bytes.Clone(b.buf.Bytes()), b.exceeded
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
