package feedback

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// ServerOptions configure the feedback listener.
type ServerOptions struct {
	// Hostname is the greeting's name.
	Hostname string
	// Address is the only recipient accepted (config complaints.address).
	Address string
	// MaxSize bounds a report in bytes.
	MaxSize int64
	// MaxConnections bounds the sessions open at once; over it a client is closed at once. Default: 20.
	MaxConnections int
	Intake         *Intake
	Logger         *slog.Logger
}

// Server is the feedback listener: an SMTP server that accepts mail from anyone, for the complaints
// address only, and answers a report 250 once its complaint is recorded. It is not the customers'
// listener: it has no relaying, no customers and no spool.
type Server struct {
	o   ServerOptions
	srv *smtp.Server
	sem chan struct{}
}

// NewServer returns a feedback listener; call Serve for each listener.
func NewServer(o ServerOptions) *Server {
	if o.MaxConnections <= 0 {
		o.MaxConnections = 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, sem: make(chan struct{}, o.MaxConnections)}
	srv := smtp.NewServer(fbBackend{s})
	srv.Domain = o.Hostname
	srv.MaxMessageBytes = o.MaxSize
	srv.MaxRecipients = 5
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = discardLog{}
	s.srv = srv
	return s
}

// Serve accepts connections on l until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(&capListener{Listener: l, sem: s.sem})
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for the sessions until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

// capListener closes connections over the session cap at once.
type capListener struct {
	net.Listener
	sem chan struct{}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &capConn{Conn: c, sem: l.sem}, nil
		default:
			c.Write([]byte("421 4.7.0 Too many connections, try again later\r\n"))
			c.Close()
		}
	}
}

type capConn struct {
	net.Conn
	sem  chan struct{}
	once sync.Once
}

func (c *capConn) Close() error {
	c.once.Do(func() { <-c.sem })
	return c.Conn.Close()
}

type fbBackend struct{ s *Server }

func (b fbBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &fbSession{s: b.s, remote: c.Conn().RemoteAddr().String()}, nil
}

type fbSession struct {
	s      *Server
	remote string
	rcpt   bool
}

func (f *fbSession) Reset()        { f.rcpt = false }
func (f *fbSession) Logout() error { return nil }

func (f *fbSession) Mail(string, *smtp.MailOptions) error { return nil }

func (f *fbSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.EqualFold(strings.TrimSpace(to), f.s.o.Address) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "No such recipient here: this host takes feedback reports for " + f.s.o.Address + " only"}
	}
	f.rcpt = true
	return nil
}

func (f *fbSession) Data(r io.Reader) error {
	if !f.rcpt {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Need RCPT before DATA"}
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err // go-smtp answers a message over MaxMessageBytes with its own 552
	}
	rep, err := Parse(&buf)
	if err != nil {
		f.s.o.Intake.Invalid()
		f.s.o.Logger.Info("feedback: message refused: not a feedback report", "remote", f.remote, "err", err)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message: "Not a feedback report: this address takes ARF reports only (RFC 5965)"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := f.s.o.Intake.Record(ctx, rep)
	if err != nil {
		f.s.o.Logger.Error("feedback: recording a report failed", "remote", f.remote, "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Report not recorded, try again later"}
	}
	msg := "Report received"
	if !out.Matched {
		msg = "Report received; it matches no message relayed here"
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: msg}
}
