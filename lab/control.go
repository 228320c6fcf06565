package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A lab brought up by hand (`dbprobe lab up`) lives as long as the process
// that started it, since its servers die with that process. That process
// serves a small HTTP API on a unix socket in the lab's directory, and
// writes Info to InfoFile so that `dbprobe lab switchover` and `dbprobe lab
// down` find it:
//
//	GET  /v1/lab         Info as JSON
//	POST /v1/switchover  SwitchoverOptions as JSON in; JSON lines out, one
//	                     {"step": Step} per step as it happens, then
//	                     {"truth": Truth} and, when it failed, {"error": "..."}
//	POST /v1/failover    the same with FailoverOptions
//	POST /v1/reboot      the same with RebootOptions
//	POST /v1/proxy       the same with ProxyOptions (a lab up with a proxy)
//	POST /v1/down        stops the lab (the reply comes first)
//
// The socket is created with mode 0600 in a 0700 directory: only its owner
// can drive the lab.

// InfoFile is the name of the file, in the lab's directory, that describes a
// lab brought up by hand.
const InfoFile = "lab.json"

// SocketFile is the name of the control socket in the lab's directory.
const SocketFile = "control.sock"

// maxSocketPath is what fits in sun_path with its terminating NUL on every
// platform dbprobe supports.
const maxSocketPath = 103

// Info describes a running lab.
type Info struct {
	PID          int    `json:"pid"`
	Dir          string `json:"dir"`
	Control      string `json:"control"` // path of the control socket
	Blue         string `json:"blue"`
	Green        string `json:"green"`
	Endpoint     string `json:"endpoint"` // name:port
	DNS          string `json:"dns"`
	User         string `json:"user"`
	PasswordFile string `json:"password_file"`
	Config       string `json:"config"` // a ready-made dbprobe configuration
	SinglePort   bool   `json:"single_port,omitempty"`
	Proxy        bool   `json:"proxy,omitempty"` // the endpoint is the lab's proxy
}

// Info describes the lab; config is the dbprobe configuration written for
// it.
func (l *Lab) Info(config string) Info {
	return Info{
		PID:          os.Getpid(),
		Dir:          l.dir,
		Control:      filepath.Join(l.dir, SocketFile),
		Blue:         l.blue.Addr(),
		Green:        l.green.Addr(),
		Endpoint:     l.EndpointAddr(),
		DNS:          l.dns.Addr(),
		User:         ProbeUser,
		PasswordFile: l.PasswordFile(),
		Config:       config,
		SinglePort:   l.SinglePort(),
		Proxy:        l.proxy != nil,
	}
}

// Control serves the control API of a lab brought up by hand.
type Control struct {
	lab      *Lab
	info     Info
	log      *slog.Logger
	srv      *http.Server
	ln       net.Listener
	down     chan struct{}
	downOnce sync.Once
	done     chan struct{}
}

// Serve listens on the control socket, writes the lab's InfoFile and serves
// until Close. Down is closed when a client asks the lab to stop.
func (l *Lab) Serve(info Info) (*Control, error) {
	if len(info.Control) > maxSocketPath {
		return nil, fmt.Errorf("lab: control socket path %s is longer than a unix socket allows (%d bytes); use a shorter --dir", info.Control, maxSocketPath)
	}
	os.Remove(info.Control) // a stale socket of a lab that died
	ln, err := net.Listen("unix", info.Control)
	if err != nil {
		return nil, fmt.Errorf("lab: control socket: %w", err)
	}
	if err := os.Chmod(info.Control, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("lab: control socket: %w", err)
	}
	c := &Control{lab: l, info: info, log: l.log, ln: ln, down: make(chan struct{}), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/lab", c.handleInfo)
	for _, sc := range Scenarios {
		mux.HandleFunc("POST /v1/"+controlPath(sc), c.handleRun(sc))
	}
	mux.HandleFunc("POST /v1/down", c.handleDown)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := writeJSON(filepath.Join(l.dir, InfoFile), info); err != nil {
		ln.Close()
		return nil, err
	}
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("lab control socket stopped", "err", err)
		}
	}()
	return c, nil
}

// Down is closed when a client asked the lab to stop.
func (c *Control) Down() <-chan struct{} { return c.down }

// Close stops serving (a switchover in progress is cut off with its
// client), removes the socket and the InfoFile.
func (c *Control) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = c.srv.Close()
	}
	<-c.done
	os.Remove(c.info.Control)
	os.Remove(filepath.Join(c.info.Dir, InfoFile))
	return err
}

func (c *Control) handleInfo(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.info)
}

// controlLine is one line of the switchover reply.
type controlLine struct {
	Step  *Step  `json:"step,omitempty"`
	Truth *Truth `json:"truth,omitempty"`
	Error string `json:"error,omitempty"`
}

// controlPath is the control API's path of a scenario.
func controlPath(scenario string) string {
	if scenario == ScenarioBlueGreen {
		return "switchover"
	}
	return scenario
}

// handleRun runs scenario with the knobs of the request body (missing ones
// take the defaults) and streams its steps and truth.
func (c *Control) handleRun(scenario string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		o := RunOptions{Scenario: scenario, Switchover: DefaultSwitchover(), Failover: DefaultFailover(),
			Reboot: DefaultReboot(), Proxy: DefaultProxy()}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(o.Knobs()); err != nil {
			http.Error(w, "bad "+scenario+" options: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := o.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		enc := json.NewEncoder(w)
		flush()
		o.Progress = func(s Step) {
			_ = enc.Encode(controlLine{Step: &s})
			flush()
		}
		// The run goes to its end even if the client goes away: a half
		// done switchover is worse than an unread report.
		truth, err := o.run(context.WithoutCancel(r.Context()), c.lab)
		if truth != nil {
			_ = enc.Encode(controlLine{Truth: truth})
			if len(truth.Steps) > 0 {
				name := "truth-" + truth.Steps[0].At.UTC().Format("20060102T150405Z") + ".json"
				if werr := writeJSON(filepath.Join(c.lab.dir, name), truth); werr != nil {
					c.log.Warn("could not keep the ground truth", "scenario", scenario, "err", werr)
				}
			}
		}
		if err != nil {
			_ = enc.Encode(controlLine{Error: err.Error()})
		}
		flush()
	}
}

func (c *Control) handleDown(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
	c.downOnce.Do(func() { close(c.down) })
}

// Client drives a lab brought up by hand.
type Client struct {
	Info Info
	hc   *http.Client
}

// ErrNoLab is wrapped by Dial's error when no lab is up in the directory.
var ErrNoLab = errors.New("no lab is up")

// Dial finds the lab brought up in dir and checks that it answers.
func Dial(ctx context.Context, dir string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (start one with: dbprobe lab up)", ErrNoLab, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	c := &Client{}
	if err := json.Unmarshal(b, &c.Info); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", filepath.Join(dir, InfoFile), err)
	}
	sock := c.Info.Control
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	if _, err := c.get(ctx); err != nil {
		return nil, fmt.Errorf("%w in %s: the lab that wrote %s (pid %d) does not answer: %v", ErrNoLab, dir, InfoFile, c.Info.PID, err)
	}
	return c, nil
}

func (c *Client) get(ctx context.Context) (*Info, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://lab/v1/lab", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lab answered %s", resp.Status)
	}
	var info Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Switchover asks the lab to switch over and returns the ground truth;
// progress, if not nil, sees each step as it happens.
func (c *Client) Switchover(ctx context.Context, o SwitchoverOptions, progress func(Step)) (*Truth, error) {
	return c.Run(ctx, ScenarioBlueGreen, o, progress)
}

// Run asks the lab to run scenario with knobs (its options: a
// SwitchoverOptions, FailoverOptions, RebootOptions or ProxyOptions) and
// returns the ground truth; progress, if not nil, sees each step as it
// happens.
func (c *Client) Run(ctx context.Context, scenario string, knobs any, progress func(Step)) (*Truth, error) {
	if err := CheckScenario(scenario); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	what := controlPath(scenario)
	body, err := json.Marshal(knobs)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://lab/v1/"+what, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lab: %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("lab: %s: %s", what, bytes.TrimSpace(msg))
	}
	var (
		truth  *Truth
		failed error
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line controlLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return truth, fmt.Errorf("lab: %s: bad reply line: %w", what, err)
		}
		switch {
		case line.Step != nil && progress != nil:
			progress(*line.Step)
		case line.Truth != nil:
			truth = line.Truth
		case line.Error != "":
			failed = errors.New(line.Error)
		}
	}
	if err := sc.Err(); err != nil {
		return truth, fmt.Errorf("lab: %s: reply cut off: %w", what, err)
	}
	if truth == nil && failed == nil {
		return nil, fmt.Errorf("lab: %s: the lab stopped before it finished", what)
	}
	return truth, failed
}

// Down asks the lab to stop.
func (c *Client) Down(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://lab/v1/down", nil)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("lab: down: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("lab: down: the lab answered %s", resp.Status)
	}
	return nil
}
