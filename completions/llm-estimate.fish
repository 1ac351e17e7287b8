# fish completion for llm-estimate(1).
# Installed as share/fish/vendor_completions.d/llm-estimate.fish.

# The chat is read from stdin: no file arguments.
complete -c llm-estimate -f
complete -c llm-estimate -s h -l help -d 'Show the help and exit'
complete -c llm-estimate -s V -l version -d 'Show the version and exit'
complete -c llm-estimate -s v -l verbose -d 'Log each stage on stderr'
complete -c llm-estimate -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-estimate -s q -l quiet -d 'Print no warnings'
complete -c llm-estimate -l max-input -x -d 'Refuse input over SIZE bytes (default 64M)'
complete -c llm-estimate -l text -d 'Read the input as plain text'
complete -c llm-estimate -s n -l tokens -d 'Print only the estimated token count'
complete -c llm-estimate -s c -l compact -d 'Print the report on one line'
complete -c llm-estimate -l per-message -d "Add each message's size to the report"
complete -c llm-estimate -l method -x -a 'qwen chars4' -d 'The estimator'
complete -c llm-estimate -l a-max -x -d 'Direct below N tokens (default 2000)'
complete -c llm-estimate -l b-max -x -d 'Summarize below N tokens (default 6000)'
