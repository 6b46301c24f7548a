package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/appv/appv/internal/fdpass"
)

// ErrNoService means nothing answers on the socket.
var ErrNoService = errors.New("the appv client service is not running")

// Conn is the command's connection to the service for one request.
type Conn struct {
	c *net.UnixConn
}

// Dial connects to the service's socket.
func Dial(ctx context.Context, socket string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w at %s: start it with systemctl start appv-client (or appv client service)", ErrNoService, socket)
		}
		return nil, fmt.Errorf("connect to the appv client service at %s: %w", socket, err)
	}
	return &Conn{c: c.(*net.UnixConn)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Send sends the request, with files (the caller's stdio for launch).
func (c *Conn) Send(req Request, files ...*os.File) error {
	return fdpass.Send(c.c, req, files...)
}

// SendSignal forwards a signal during a launch.
func (c *Conn) SendSignal(sig Signal) error { return fdpass.Send(c.c, sig) }

// Next reads the next response and the files that came with it.
func (c *Conn) Next() (Response, []*os.File, error) {
	var r Response
	files, err := fdpass.Recv(c.c, &r)
	if err != nil {
		return r, nil, fmt.Errorf("the appv client service closed the connection: %w", err)
	}
	return r, files, nil
}

// Call sends a request and waits for its result, reporting progress. The
// result is decoded into out when not nil.
func (c *Conn) Call(req Request, progress func(Progress), out any) error {
	if err := c.Send(req); err != nil {
		return err
	}
	for {
		r, files, err := c.Next()
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			return err
		}
		switch {
		case r.Progress != nil:
			if progress != nil {
				progress(*r.Progress)
			}
		case r.Error != nil:
			return r.Error
		case r.Result != nil:
			if out != nil {
				return json.Unmarshal(r.Result, out)
			}
			return nil
		}
	}
}
