package detector

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dbprobe/dbprobe/event"
)

// Decoder turns journal lines into events for the detector, several times
// faster than encoding/json: it decodes only the fields the detector reads
// (listed in decodeFields below) into storage it reuses, and interns
// repeated strings. Lines it does not expect (other layouts, escapes in
// keys) go through encoding/json instead, so every valid line decodes; an
// invalid one returns the encoding/json error.
//
// A Decoder is not safe for concurrent use; use one per goroutine. The
// detector keeps no reference to the events it observes, so their storage
// can be reused as soon as Observe returns.
type Decoder struct {
	p    parser
	own  Slot
	s    *Slot
	strs map[string]string
}

// Slot is the storage of one decoded event. The zero Slot is ready to use.
type Slot struct {
	ev      event.Event
	errv    event.Error
	dest    event.Destination
	lat     event.Latency
	phase   [4]float64
	fail    event.Failure
	dns     event.DNS
	srv     event.Server
	read    event.Outcome
	write   event.Outcome
	gap     event.Gap
	bg      event.BlueGreen
	repl    event.Replicate
	lag     float64
	ints    [2]int64
	bools   [3]bool
	answers []string
}

// maxInterned bounds the strings a Decoder remembers: past it, new strings
// are allocated per line (still correct, just slower).
const maxInterned = 4096

// NewDecoder returns a decoder.
func NewDecoder() *Decoder { return &Decoder{strs: map[string]string{}} }

// errSlow sends a line down the encoding/json path.
var errSlow = errors.New("line needs the general decoder")

// Decode decodes one journal line into the decoder's own slot: the event
// is valid until the next call.
func (d *Decoder) Decode(line []byte) (*event.Event, error) { return d.DecodeTo(line, &d.own) }

// DecodeTo decodes one journal line into s: the event is valid until s is
// used again.
func (d *Decoder) DecodeTo(line []byte, s *Slot) (*event.Event, error) {
	d.p = parser{b: line}
	d.s = s
	s.ev = event.Event{}
	s.answers = s.answers[:0]
	if err := d.event(); err == nil {
		if d.p.ws(); d.p.i == len(d.p.b) {
			return &s.ev, nil
		}
	}
	ev := &event.Event{}
	if err := json.Unmarshal(line, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// decodeFields: @timestamp; event.{id,kind,action,start,end}; error.type;
// observer.{name,hostname,type,product,version}; labels;
// destination.{address,ip}; dbprobe.{schema,run_id,target,mode,tick,
// scheduled, latency_ms.{total,dns,connect,query,write}, dns.answers,
// server.*, read.ok, write.ok, failure.{class,phase}, gap.*,
// bluegreen.{phase,status}}.
func (d *Decoder) event() error {
	p := &d.p
	return p.object(func(key []byte) error {
		switch string(key) {
		case "@timestamp":
			return p.time(&d.s.ev.Timestamp)
		case "event":
			return p.object(func(k []byte) error {
				switch string(k) {
				case "id":
					return d.str(&d.s.ev.Event.ID, false)
				case "kind":
					return d.str(&d.s.ev.Event.Kind, true)
				case "action":
					return d.str(&d.s.ev.Event.Action, true)
				case "start":
					return p.time(&d.s.ev.Event.Start)
				case "sequence":
					v, err := p.int()
					d.s.ev.Event.Sequence = uint64(v)
					return err
				case "end":
					return p.time(&d.s.ev.Event.End)
				}
				return p.skipUnless(k, metaKeys)
			})
		case "error":
			if p.null() {
				d.s.ev.Error = nil
				return nil
			}
			use(&d.s.ev.Error, &d.s.errv)
			return p.object(func(k []byte) error {
				if string(k) == "type" {
					return d.str(&d.s.errv.Type, true)
				}
				return p.skipUnless(k, errorKeys)
			})
		case "observer":
			o := &d.s.ev.Observer
			return p.object(func(k []byte) error {
				switch string(k) {
				case "name":
					return d.str(&o.Name, true)
				case "hostname":
					return d.str(&o.Hostname, true)
				case "type":
					return d.str(&o.Type, true)
				case "product":
					return d.str(&o.Product, true)
				case "version":
					return d.str(&o.Version, true)
				}
				return p.skipUnless(k, observerKeys)
			})
		case "labels":
			if p.null() {
				d.s.ev.Labels = nil
				return nil
			}
			if d.s.ev.Labels == nil {
				d.s.ev.Labels = map[string]string{}
			}
			return p.object(func(k []byte) error {
				if p.null() {
					return nil // as encoding/json: the label stays as it was
				}
				var v string
				if err := d.str(&v, true); err != nil {
					return err
				}
				d.s.ev.Labels[d.intern(k)] = v
				return nil
			})
		case "destination":
			if p.null() {
				d.s.ev.Destination = nil
				return nil
			}
			use(&d.s.ev.Destination, &d.s.dest)
			return p.object(func(k []byte) error {
				switch string(k) {
				case "address":
					return d.str(&d.s.dest.Address, true)
				case "ip":
					return d.str(&d.s.dest.IP, true)
				}
				return p.skipUnless(k, destinationKeys)
			})
		case "dbprobe":
			return d.dbprobe()
		}
		return p.skipUnless(key, topKeys)
	})
}

// dbprobe decodes the dbprobe object; each nested object has its own
// method.
func (d *Decoder) dbprobe() error {
	p := &d.p
	x := &d.s.ev.DBProbe
	s := d.s
	return p.object(func(key []byte) error {
		switch string(key) {
		case "schema":
			v := int64(x.Schema)
			err := d.int(&v)
			x.Schema = int(v)
			return err
		case "run_id":
			return d.str(&x.RunID, true)
		case "target":
			return d.str(&x.Target, true)
		case "mode":
			return d.str(&x.Mode, true)
		case "tick":
			return d.int(&x.Tick)
		case "scheduled":
			return p.time(&x.Scheduled)
		case "latency_ms":
			return nested(d, &x.Latency, &s.lat, d.latency)
		case "failure":
			return nested(d, &x.Failure, &s.fail, d.failure)
		case "dns":
			return nested(d, &x.DNS, &s.dns, d.dns)
		case "server":
			return nested(d, &x.Server, &s.srv, d.server)
		case "read":
			return d.outcome(&x.Read, &s.read)
		case "write":
			return d.outcome(&x.Write, &s.write)
		case "gap":
			return nested(d, &x.Gap, &s.gap, d.gap)
		case "replication":
			return nested(d, &x.Replication, &s.repl, d.replication)
		case "bluegreen":
			return nested(d, &x.BlueGreen, &s.bg, d.bluegreen)
		case "aws":
			// AWS's events are rare: the general decoder reads them.
			return errSlow
		}
		return p.skipUnless(key, dbprobeKeys)
	})
}

// nested decodes an object that may be null into scratch and points *dst
// at it; null makes *dst nil, as encoding/json does. field decodes the
// value of each key.
func nested[T any](d *Decoder, dst **T, scratch *T, field func(key []byte) error) error {
	if d.p.null() {
		*dst = nil
		return nil
	}
	use(dst, scratch)
	return d.p.object(field)
}

func (d *Decoder) latency(k []byte) error {
	l := &d.s.lat
	switch string(k) {
	case "total":
		return d.float(&l.Total)
	case "dns":
		return d.phase(&l.DNS, &d.s.phase[0])
	case "connect":
		return d.phase(&l.Connect, &d.s.phase[1])
	case "query":
		return d.phase(&l.Query, &d.s.phase[2])
	case "write":
		return d.phase(&l.Write, &d.s.phase[3])
	}
	return d.p.skipUnless(k, latencyKeys)
}

// phase decodes a phase latency, which is absent (nil) when the phase did
// not run.
func (d *Decoder) phase(dst **float64, scratch *float64) error {
	if d.p.null() {
		*dst = nil
		return nil
	}
	v, err := d.p.float()
	*scratch, *dst = v, scratch
	return err
}

func (d *Decoder) failure(k []byte) error {
	switch string(k) {
	case "class":
		return d.str(&d.s.fail.Class, true)
	case "phase":
		return d.str(&d.s.fail.Phase, true)
	}
	return d.p.skipUnless(k, failureKeys)
}

func (d *Decoder) dns(k []byte) error {
	p := &d.p
	if string(k) != "answers" {
		return p.skipUnless(k, dnsKeys)
	}
	if p.null() {
		d.s.dns.Answers = nil
		return nil
	}
	d.s.answers = d.s.answers[:0]
	err := p.array(func() error {
		var s string
		if err := d.str(&s, true); err != nil {
			return err
		}
		d.s.answers = append(d.s.answers, s)
		return nil
	})
	d.s.dns.Answers = d.s.answers
	return err
}

func (d *Decoder) server(k []byte) error {
	s := &d.s.srv
	switch string(k) {
	case "identity":
		return d.str(&s.Identity, true)
	case "hostname":
		return d.str(&s.Hostname, true)
	case "server_uuid":
		return d.str(&s.ServerUUID, true)
	case "aurora_server_id":
		return d.str(&s.AuroraServerID, true)
	case "version":
		return d.str(&s.Version, true)
	case "version_comment":
		return d.str(&s.VersionComment, true)
	case "address":
		return d.str(&s.Address, true)
	case "role":
		return d.str(&s.Role, true)
	case "server_id":
		return d.optInt(&s.ServerID, &d.s.ints[0])
	case "port":
		return d.optInt(&s.Port, &d.s.ints[1])
	case "read_only":
		return d.optBool(&s.ReadOnly, &d.s.bools[0])
	case "super_read_only":
		return d.optBool(&s.SuperReadOnly, &d.s.bools[1])
	case "innodb_read_only":
		return d.optBool(&s.InnoDBReadOnly, &d.s.bools[2])
	}
	return d.p.skipUnless(k, serverKeys)
}

func (d *Decoder) gap(k []byte) error {
	g := &d.s.gap
	switch string(k) {
	case "first_tick":
		return d.int(&g.FirstTick)
	case "last_tick":
		return d.int(&g.LastTick)
	case "ticks":
		return d.int(&g.Ticks)
	case "from":
		return d.p.time(&g.From)
	case "to":
		return d.p.time(&g.To)
	}
	if d.p.null() {
		return nil
	}
	return d.p.skipUnless(k, gapKeys)
}

func (d *Decoder) replication(k []byte) error {
	if string(k) != "lag_seconds" {
		return d.p.skipUnless(k, replicationKeys)
	}
	if d.p.null() {
		d.s.repl.LagSeconds = nil
		return nil
	}
	v, err := d.p.float()
	d.s.lag = v
	d.s.repl.LagSeconds = &d.s.lag
	return err
}

func (d *Decoder) bluegreen(k []byte) error {
	switch string(k) {
	case "phase":
		return d.str(&d.s.bg.Phase, true)
	case "status":
		return d.str(&d.s.bg.Status, true)
	}
	return d.p.skipUnless(k, bluegreenKeys)
}

func (d *Decoder) outcome(dst **event.Outcome, scratch *event.Outcome) error {
	return nested(d, dst, scratch, func(k []byte) error {
		if string(k) == "ok" {
			if d.p.null() {
				return nil
			}
			return d.p.bool(&scratch.OK)
		}
		return d.p.skipUnless(k, outcomeKeys)
	})
}

// int decodes a number; null leaves dst as it is (as encoding/json does).
func (d *Decoder) int(dst *int64) error {
	if d.p.null() {
		return nil
	}
	v, err := d.p.int()
	*dst = v
	return err
}

// float decodes a number; null leaves dst as it is.
func (d *Decoder) float(dst *float64) error {
	if d.p.null() {
		return nil
	}
	v, err := d.p.float()
	*dst = v
	return err
}

func (d *Decoder) optInt(dst **int64, scratch *int64) error {
	if d.p.null() {
		*dst = nil
		return nil
	}
	v, err := d.p.int()
	*scratch, *dst = v, scratch
	return err
}

func (d *Decoder) optBool(dst **bool, scratch *bool) error {
	if d.p.null() {
		*dst = nil
		return nil
	}
	*dst = scratch
	return d.p.bool(scratch)
}

// str decodes a string; null leaves dst as it is (as encoding/json does).
// intern makes repeated values share one allocation.
func (d *Decoder) str(dst *string, intern bool) error {
	p := &d.p
	if p.null() {
		return nil
	}
	raw, err := p.stringRaw()
	if err != nil {
		return err
	}
	if intern {
		*dst = d.intern(raw)
	} else {
		*dst = string(raw)
	}
	return nil
}

func (d *Decoder) intern(b []byte) string {
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.strs) < maxInterned {
		d.strs[s] = s
	}
	return s
}

// parser walks one JSON value at a time. It handles exactly what
// encoding/json writes for events; anything else (escapes, exotic number
// forms) returns errSlow and the line is decoded by encoding/json.
type parser struct {
	b     []byte
	i     int
	depth int
}

// maxDepth bounds nesting: events nest four deep; a deeper line is no
// event and takes the slow path, which has its own limit.
const maxDepth = 64

func (p *parser) ws() {
	if p.i < len(p.b) && p.b[p.i] > ' ' {
		return // what encoding/json writes: no whitespace at all
	}
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// null consumes a null literal if one comes next.
func (p *parser) null() bool {
	p.ws()
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// object calls field for every key of an object; field must consume the
// value.
func (p *parser) object(field func(key []byte) error) error {
	return p.container('{', '}', func() error {
		key, err := p.stringRaw()
		if err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return errSlow
		}
		p.i++
		return field(key)
	})
}

// array calls elem for every element of an array.
func (p *parser) array(elem func() error) error { return p.container('[', ']', elem) }

// container walks the comma-separated members of an object or array.
func (p *parser) container(opening, closing byte, member func() error) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != opening || p.depth >= maxDepth {
		return errSlow
	}
	p.depth++
	defer func() { p.depth-- }()
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == closing {
		p.i++
		return nil
	}
	for {
		if err := member(); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return errSlow
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case closing:
			p.i++
			return nil
		default:
			return errSlow
		}
	}
}

// strPlain marks the bytes a string holds without a closer look: printable
// ASCII other than the quote and the backslash.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// stringRaw returns a string's bytes without quotes; strings with escapes
// or control characters take the slow path.
func (p *parser) stringRaw() ([]byte, error) {
	p.ws()
	b := p.b
	if p.i >= len(b) || b[p.i] != '"' {
		return nil, errSlow
	}
	start := p.i + 1
	i := start
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' {
		p.i = i + 1
		return b[start:i], nil
	}
	// Not plain ASCII: find the end, then check the UTF-8.
	for ; i < len(b) && b[i] != '"'; i++ {
		if b[i] == '\\' || b[i] < 0x20 {
			return nil, errSlow
		}
	}
	if i >= len(b) || !utf8.Valid(b[start:i]) {
		return nil, errSlow // encoding/json replaces invalid bytes
	}
	p.i = i + 1
	return b[start:i], nil
}

func (p *parser) bool(dst *bool) error {
	p.ws()
	switch {
	case bytes.HasPrefix(p.b[p.i:], []byte("true")):
		*dst = true
		p.i += 4
	case bytes.HasPrefix(p.b[p.i:], []byte("false")):
		*dst = false
		p.i += 5
	default:
		return errSlow
	}
	return nil
}

// number returns the bytes of a JSON number.
func (p *parser) number() []byte {
	p.ws()
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			p.i++
			continue
		}
		break
	}
	return p.b[start:p.i]
}

func (p *parser) int() (int64, error) {
	n := p.number()
	if len(n) == 0 {
		return 0, errSlow
	}
	neg := n[0] == '-'
	if neg {
		n = n[1:]
	}
	if len(n) == 0 || len(n) > 18 || (len(n) > 1 && n[0] == '0') {
		return 0, errSlow
	}
	var v int64
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, errSlow
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

func (p *parser) float() (float64, error) {
	n := p.number()
	if len(n) == 0 {
		return 0, errSlow
	}
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, errSlow
	}
	return v, nil
}

func (p *parser) time(dst *time.Time) error {
	if p.null() {
		return nil
	}
	raw, err := p.stringRaw()
	if err != nil {
		return err
	}
	if err := dst.UnmarshalText(raw); err != nil {
		return errSlow
	}
	return nil
}

// use points *dst at scratch, zeroed, unless a repeated key already did
// (encoding/json then merges into the same value).
func use[T any](dst **T, scratch *T) {
	if *dst == nil {
		var zero T
		*scratch, *dst = zero, scratch
	}
}

// The keys each object's decoder knows. encoding/json matches keys without
// regard to case; a key that differs from a known one only in case goes to
// the slow path so both decoders agree.
var (
	topKeys         = [][]byte{[]byte("@timestamp"), []byte("event"), []byte("error"), []byte("observer"), []byte("labels"), []byte("destination"), []byte("dbprobe")}
	metaKeys        = [][]byte{[]byte("id"), []byte("kind"), []byte("action"), []byte("start"), []byte("sequence"), []byte("end")}
	errorKeys       = [][]byte{[]byte("type")}
	observerKeys    = [][]byte{[]byte("name"), []byte("hostname"), []byte("type"), []byte("product"), []byte("version")}
	destinationKeys = [][]byte{[]byte("address"), []byte("ip")}
	dbprobeKeys     = [][]byte{[]byte("schema"), []byte("run_id"), []byte("target"), []byte("mode"), []byte("tick"), []byte("scheduled"), []byte("latency_ms"), []byte("dns"), []byte("server"), []byte("read"), []byte("write"), []byte("gap"), []byte("bluegreen"), []byte("replication"), []byte("failure")}
	latencyKeys     = [][]byte{[]byte("total"), []byte("dns"), []byte("connect"), []byte("query"), []byte("write")}
	failureKeys     = [][]byte{[]byte("class"), []byte("phase")}
	dnsKeys         = [][]byte{[]byte("answers")}
	serverKeys      = [][]byte{[]byte("identity"), []byte("hostname"), []byte("server_uuid"), []byte("aurora_server_id"), []byte("version"), []byte("version_comment"), []byte("address"), []byte("role"), []byte("server_id"), []byte("port"), []byte("read_only"), []byte("super_read_only"), []byte("innodb_read_only")}
	outcomeKeys     = [][]byte{[]byte("ok")}
	gapKeys         = [][]byte{[]byte("first_tick"), []byte("last_tick"), []byte("ticks"), []byte("from"), []byte("to")}
	bluegreenKeys   = [][]byte{[]byte("phase"), []byte("status")}
	replicationKeys = [][]byte{[]byte("lag_seconds")}
)

// skipUnless skips the value of key, which matched none of known exactly;
// a case-insensitive match takes the slow path.
func (p *parser) skipUnless(key []byte, known [][]byte) error {
	for _, k := range known {
		if len(k) <= len(key)*3 && len(key) <= len(k)*3 && bytes.EqualFold(k, key) {
			return errSlow
		}
	}
	return p.skip()
}

// skip consumes any value.
func (p *parser) skip() error {
	p.ws()
	if p.i >= len(p.b) {
		return errSlow
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(func([]byte) error { return p.skip() })
	case c == '[':
		return p.array(p.skip)
	case c == '"':
		_, err := p.stringRaw()
		return err
	case c == 't' || c == 'f':
		var b bool
		return p.bool(&b)
	case c == 'n':
		if p.null() {
			return nil
		}
		return errSlow
	case c == '-' || (c >= '0' && c <= '9'):
		if len(p.number()) == 0 {
			return errSlow
		}
		return nil
	}
	return errSlow
}
