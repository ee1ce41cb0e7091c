package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
)

// version is set at build time (-ldflags "-X main.version=…"); a build
// without it reports its module version or VCS revision.
var version = ""

// builtin runs what is not a command of a noun: help for one command or
// a group, version and shell completion. handled is false for anything else.
func builtin(argv []string, sys system) (handled bool, err error) {
	switch argv[0] {
	case "version":
		fmt.Fprintln(sys.stdout, versionLine())
		return true, nil
	case "help":
		if len(argv) == 1 {
			usage(sys.stdout)
			return true, nil
		}
		return true, helpFor(sys.stdout, argv[1:])
	case "completion":
		if len(argv) != 2 {
			return true, fmt.Errorf("%w: guild completion bash|zsh|fish", errUsage)
		}
		return true, completion(sys.stdout, argv[1])
	}
	return false, nil
}

func versionLine() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += " " + s.Value[:12]
				}
			}
		}
	}
	return fmt.Sprintf("guild %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// helpFor prints one command's usage and flags, or the commands of a
// group ("guild help server").
func helpFor(w io.Writer, words []string) error {
	name := strings.Join(words, " ")
	for i := range commands {
		if c := &commands[i]; c.name == name {
			commandHelp(w, c)
			return nil
		}
	}
	if group := groupOf(name); len(group) > 0 {
		groupHelp(w, name, group)
		return nil
	}
	return fmt.Errorf("%w: no command %q (guild help lists them)", errUsage, name)
}

// commandHelp prints a command's usage line, what it does and its flags.
func commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: guild %s %s\n  %s\n", c.name, usageLine(c.params), c.help)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.bind(fs, &env{})
	if hasFlags(fs) {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if ex, ok := examples[c.name]; ok {
		fmt.Fprintln(w, "\nexample:", strings.ReplaceAll(ex, "`", ""))
	}
	fmt.Fprintln(w, "\nglobal flags, before or after the command: --home DIR, --json")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// groupOf returns the commands whose name starts with the words of prefix.
func groupOf(prefix string) []command {
	var out []command
	for _, c := range commands {
		if strings.HasPrefix(c.name+" ", prefix+" ") && c.name != prefix {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func groupHelp(w io.Writer, name string, group []command) {
	fmt.Fprintf(w, "guild %s: one of\n", name)
	for _, c := range group {
		fmt.Fprintf(w, "  %-26s %s\n", c.name, c.help)
	}
	fmt.Fprintf(w, "\n\"guild help %s SUBCOMMAND\" shows its arguments and flags.\n", name)
}

// completion prints a completion script for a shell: command words, the
// next word of a group, then files.
func completion(w io.Writer, shell string) error {
	firsts, nexts := map[string]bool{}, map[string][]string{}
	for _, c := range commands {
		words := strings.Fields(c.name)
		firsts[words[0]] = true
		if len(words) > 1 {
			nexts[words[0]] = append(nexts[words[0]], words[1])
		}
	}
	for _, b := range []string{"help", "version", "completion"} {
		firsts[b] = true
	}
	var top []string
	for f := range firsts {
		top = append(top, f)
	}
	sort.Strings(top)
	var groups []string
	for g := range nexts {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	switch shell {
	case "bash":
		fmt.Fprintf(w, "_guild() {\n  local cur=${COMP_WORDS[COMP_CWORD]}\n  if [ $COMP_CWORD -eq 1 ]; then\n    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n  case ${COMP_WORDS[1]} in\n", strings.Join(top, " "))
		for _, g := range groups {
			fmt.Fprintf(w, "    %s) [ $COMP_CWORD -eq 2 ] && COMPREPLY=($(compgen -W %q -- \"$cur\")) && return ;;\n", g, strings.Join(nexts[g], " "))
		}
		fmt.Fprintln(w, "  esac\n  COMPREPLY=($(compgen -f -- \"$cur\"))\n}\ncomplete -F _guild guild")
	case "zsh":
		fmt.Fprintf(w, "#compdef guild\n_guild() {\n  if (( CURRENT == 2 )); then\n    compadd -- %s\n    return\n  fi\n  case $words[2] in\n", strings.Join(top, " "))
		for _, g := range groups {
			fmt.Fprintf(w, "    %s) (( CURRENT == 3 )) && compadd -- %s && return ;;\n", g, strings.Join(nexts[g], " "))
		}
		fmt.Fprintln(w, "  esac\n  _files\n}\ncompdef _guild guild")
	case "fish":
		fmt.Fprintf(w, "complete -c guild -f -n '__fish_use_subcommand' -a %q\n", strings.Join(top, " "))
		for _, g := range groups {
			fmt.Fprintf(w, "complete -c guild -f -n '__fish_seen_subcommand_from %s' -a %q\n", g, strings.Join(nexts[g], " "))
		}
	default:
		return fmt.Errorf("%w: completion for %q: bash, zsh or fish", errUsage, shell)
	}
	return nil
}
