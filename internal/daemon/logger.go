package daemon

import (
	"fmt"
	"io"
	"log/slog"
)

// ParseLevel reads a log_level setting: debug, info, warn or error, and
// empty for info. Anything else is an error, so a typo never leaves a
// binary logging at a level nobody chose.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log_level %q: want debug, info, warn or error", s)
}

// LogConfig is how a binary logs.
type LogConfig struct {
	// Level is the least severe level logged (from ParseLevel); default
	// info.
	Level slog.Level
	// JSON selects one JSON object a line; default logfmt-style text.
	JSON bool
	// Var, when set, is the level the logger reads instead of Level, so
	// that it can change while the binary runs (a reload).
	Var *slog.LevelVar
}

// NewLogger returns a logger writing to w.
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Var != nil {
		opts.Level = c.Var
	}
	if c.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
