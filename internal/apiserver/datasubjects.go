package apiserver

import (
	"context"
	"io"
	"net/http"

	"easymail/internal/api"
	"easymail/internal/authz"
)

// Subjects answers the data subjects' requests (/data-subjects): the export of every record naming an
// address, and its erasure. *retention.Subjects implements it.
type Subjects interface {
	WriteExport(ctx context.Context, address, requester string, w io.Writer) error
	Erase(ctx context.Context, address, requester string) (*api.Erasure, error)
}

// requester names the caller in the audit log.
func requester(p authz.Principal) string { return p.Role + " token " + p.TokenID }

// exportSubject serves GET /data-subjects/{address}: every record naming the address, as one JSON document,
// streamed. Operators only.
func (s *server) exportSubject(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	out := &lazyJSON{w: w}
	err := s.subjects.WriteExport(r.Context(), r.PathValue("address"), requester(p), out)
	if err != nil && !out.started {
		return bounceError(err)
	}
	if err != nil {
		s.log.Error("api: data subject export cut short", "err", err)
	}
	return nil
}

// eraseSubject serves DELETE /data-subjects/{address}: erases every record naming the address and answers
// what was erased and what was kept. Operators only.
func (s *server) eraseSubject(w http.ResponseWriter, r *http.Request, p authz.Principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	e, err := s.subjects.Erase(r.Context(), r.PathValue("address"), requester(p))
	if err != nil {
		return bounceError(err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

// lazyJSON is a JSON answer whose status and headers go with its first bytes, so that an error found before
// anything is written can still be answered as an error.
type lazyJSON struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyJSON) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/json")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(b)
}
