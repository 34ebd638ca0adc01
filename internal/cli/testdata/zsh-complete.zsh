# zsh -f zsh-complete.zsh FPATHDIR LINE...: types each LINE and a Tab
# into a fresh interactive zsh on a pseudo-terminal (zsh/zpty), with
# compinit and the _moat found in FPATHDIR, and prints "@@Q LINE" then
# "@@C WORD" for every candidate the completion system added (a wrapper
# of compadd records what matched; internal calls with -O/-A/-D pass).
# The markers are split in the source ("@@""C") so that the terminal's
# echo of what is typed never reads as output. The test that runs it
# bounds it in time.
zmodload zsh/zpty || exit 3
dir=$1; shift
init='PROMPT= RPROMPT= PS2=
fpath=('"$dir"' $fpath)
autoload -Uz compinit && compinit -u -D
zmodload zsh/zutil
bindkey "^I" complete-word
zstyle ":completion:*" list-grouped false
zstyle ":completion:*" insert-tab false
_drive_end() { print -r -- "@@""END"; exit }
comppostfuncs=(_drive_end)
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "$@"; return $?
  fi
  local -a __hits
  builtin compadd -A __hits "$@"
  local h; for h in $__hits; do print -r -- "@@""C $h"; done
}
print -r -- "@@""READY"'
local line q
for q in "$@"; do
  zpty z zsh -f -i || exit 4
  zpty -w z "$init"
  while zpty -r z line; do
    [[ $line == *@@READY* ]] && break
  done
  zpty -w -n z "$q"$'\t'
  print -r -- "@@Q $q"
  while zpty -r z line; do
    line=${line%$'\r'}; line=${line%$'\n'}; line=${line%$'\r'}
    [[ $line == *@@END* ]] && break
    [[ $line == *@@C\ * ]] && print -r -- "@@C ${line#*@@C }"
  done
  zpty -d z
done
