# bash completion for llm-route(1)                         -*- shell-script -*-
# Installed as share/bash-completion/completions/llm-route.

# The keys of the configuration file, for --set KEY=VALUE.
_llm_route_keys='gpu0_url gpu0_model gpu0_api gpu0_connect_timeout
    gpu0_first_byte_timeout gpu0_idle_timeout gpu0_timeout gpu0_num_ctx
    gpu0_parallel gpu0_prefill_tps gpu0_decode_tps gpu1_url gpu1_model gpu1_api gpu1_connect_timeout
    gpu1_first_byte_timeout gpu1_idle_timeout gpu1_timeout gpu1_num_ctx
    gpu1_parallel gpu1_prefill_tps gpu1_decode_tps a_max b_max policy max_chunks
    serve_listen serve_token_file
    serve_max_body serve_max_streams serve_keepalive serve_drain serve_prefetch
    serve_prepare'

# _llm_route_set PRE KEYWORD: COMPREPLY for the argument of --set, typed
# so far as KEYWORD (KEY, or KEY=VALUE when '=' is not in
# COMP_WORDBREAKS), each reply prefixed with PRE.
_llm_route_set()
{
	local pre=$1 word=$2
	if [[ $word == *=* ]]; then
		case ${word%%=*} in
		gpu[01]_api)
			COMPREPLY=($(compgen -P "$pre${word%%=*}=" \
			    -W 'ollama openai' -- "${word#*=}"))
			;;
		serve_prefetch)
			COMPREPLY=($(compgen -P "$pre${word%%=*}=" \
			    -W 'on off' -- "${word#*=}"))
			;;
		policy)
			COMPREPLY=($(compgen -P "$pre${word%%=*}=" \
			    -W 'thresholds cost' -- "${word#*=}"))
			;;
		*)	COMPREPLY=() ;;
		esac
		return
	fi
	compopt -o nospace 2>/dev/null
	COMPREPLY=($(compgen -P "$pre" -S = -W "$_llm_route_keys" -- "$word"))
}

_llm_route()
{
	local cur prev opts pre= w1= w2= w3=
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	((COMP_CWORD > 1)) && w2=${COMP_WORDS[COMP_CWORD - 2]}
	((COMP_CWORD > 2)) && w3=${COMP_WORDS[COMP_CWORD - 3]}
	w1=$prev

	# --set KEY=VALUE, with '=' in COMP_WORDBREAKS split into "--set"
	# "KEY" "=" "VALUE": the value of an _api key.
	if [[ $cur == = && $w2 == --set ]] ||
	    [[ $prev == = && $w3 == --set ]]; then
		[[ $cur == = ]] && cur= || w1=$w2
		case $w1 in
		gpu[01]_api)
			COMPREPLY=($(compgen -W 'ollama openai' -- "$cur"))
			;;
		serve_prefetch)
			COMPREPLY=($(compgen -W 'on off' -- "$cur"))
			;;
		*)	COMPREPLY=() ;;
		esac
		return
	fi

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
	--set)
		_llm_route_set "$pre" "$cur"
		return
		;;
	--on-helper-failure)
		COMPREPLY=($(compgen -P "$pre" -W 'extractive direct fail' \
		    -- "$cur"))
		return
		;;
	--on-overflow)
		COMPREPLY=($(compgen -P "$pre" -W 'refuse direct' -- "$cur"))
		return
		;;
	--bands)
		COMPREPLY=($(compgen -P "$pre" -W 'estimate server' -- "$cur"))
		return
		;;
	--policy)
		COMPREPLY=($(compgen -P "$pre" -W 'thresholds cost' -- "$cur"))
		return
		;;
	--cache-dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -P "$pre" -d -- "$cur"))
		return
		;;
	--a-max | --b-max | --gpu0-url | --gpu1-url | --model | \
	    --helper-model | --num-ctx | --max-input | --target | \
	    --preserve | --keep-last | --jobs | --chunk-tokens | \
	    --chunk-target | --max-chunks | --cache-max)
		COMPREPLY=()
		return
		;;
	esac

	opts='-h --help -V --version -v --verbose -q --quiet --log-json
	    --max-input --text -n --dry-run --explain --print-config --a-max
	    --b-max --gpu0-url --gpu1-url --model --helper-model --num-ctx
	    --set --json --no-stream --show-thinking --target --preserve
	    --keep-last --summarize-system --extractive --on-helper-failure
	    --on-overflow --bands --policy
	    --jobs --chunk-tokens --chunk-target --max-chunks --no-cache --cache-dir
	    --cache-max'
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=()	# the chat is read from stdin: no arguments
	fi
}
complete -F _llm_route llm-route
