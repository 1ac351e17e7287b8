# bash completion for llm-mapreduce(1)                     -*- shell-script -*-
# Installed as share/bash-completion/completions/llm-mapreduce.

_llm_mapreduce()
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
	--api)
		COMPREPLY=($(compgen -P "$pre" -W 'ollama openai' -- "$cur"))
		return
		;;
	--on-helper-failure)
		COMPREPLY=($(compgen -P "$pre" -W 'extractive direct fail' \
		    -- "$cur"))
		return
		;;
	--cache-dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -P "$pre" -d -- "$cur"))
		return
		;;
	--url | --model | --max-input | --connect-timeout | \
	    --first-byte-timeout | --idle-timeout | --timeout | --num-ctx | \
	    --target | --preserve | --keep-last | --jobs | --chunk-tokens | \
	    --chunk-target | --max-chunks | --cache-max)
		COMPREPLY=()
		return
		;;
	esac

	opts='-h --help -V --version -v --verbose -q --quiet --log-json
	    --max-input --text --gpu0 --gpu1 --url --model --api
	    --connect-timeout --first-byte-timeout --idle-timeout --timeout
	    --num-ctx --jobs --chunk-tokens --chunk-target --max-chunks --target --preserve
	    --keep-last --summarize-system --extractive --on-helper-failure
	    --summary-only --cache-dir --no-cache --cache-max --dry-run'
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=()	# the chat is read from stdin: no arguments
	fi
}
complete -F _llm_mapreduce llm-mapreduce
