package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// logFile is a decision log file that can be reopened by name, so that
// logrotate may rename it and signal pdp (SIGHUP) to write to a new file
// under the old name.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLogFile opens path for appending, creating it when missing.
func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

// Write implements io.Writer.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path anew and closes the previous file. When the path
// cannot be opened, writing goes on to the previous file.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// reopenOnHangup reopens f on every SIGHUP until ctx ends. With no file
// (the decision log on stdout, or off) a SIGHUP is logged and ignored,
// never the end of the process.
func reopenOnHangup(ctx context.Context, f *logFile, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if f == nil {
				log.Info("SIGHUP: no decision log file to reopen")
				continue
			}
			if err := f.Reopen(); err != nil {
				log.Error("SIGHUP: reopening the decision log", "path", f.path, "error", err.Error())
				continue
			}
			log.Info("SIGHUP: decision log reopened", "path", f.path)
		}
	}
}
