# bash completion for llm-estimate(1)                      -*- shell-script -*-
# Installed as share/bash-completion/completions/llm-estimate.

_llm_estimate()
{
	local cur prev opts pre=
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --opt=value: split by COMP_WORDBREAKS into "--opt" "=" "value".
	if [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	elif [[ $cur == --*=* ]]; then	# '=' not in COMP_WORDBREAKS
		prev=${cur%%=*}
		pre=$prev=
		cur=${cur#*=}
	fi

	case $prev in
	--method)
		COMPREPLY=($(compgen -P "$pre" -W 'qwen chars4' -- "$cur"))
		return
		;;
	--a-max | --b-max | --max-input)
		COMPREPLY=()
		return
		;;
	esac

	opts='-h --help -V --version -v --verbose -q --quiet --log-json
	    --max-input --text -n --tokens -c --compact --per-message
	    --method --a-max --b-max'
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=()	# the chat is read from stdin: no arguments
	fi
}
complete -F _llm_estimate llm-estimate
