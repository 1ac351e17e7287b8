# fish completion for llm-route(1).
# Installed as share/fish/vendor_completions.d/llm-route.fish.

# The chat is read from stdin: no file arguments.
complete -c llm-route -f
complete -c llm-route -s h -l help -d 'Show the help and exit'
complete -c llm-route -s V -l version -d 'Show the version and exit'
complete -c llm-route -s v -l verbose -d 'Log each stage on stderr'
complete -c llm-route -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-route -s q -l quiet -d 'Print no warnings and no progress'
complete -c llm-route -l max-input -x -d 'Refuse input over SIZE bytes (default 64M)'
complete -c llm-route -l text -d 'Read the input as plain text'
complete -c llm-route -s n -l dry-run -d 'Print the decision and its numbers, asking nothing'
complete -c llm-route -l explain -d 'Print the decision and its numbers, asking nothing'
complete -c llm-route -l print-config -d 'Print every setting and where it came from'
complete -c llm-route -l a-max -x -d 'Direct below N tokens (default 2000)'
complete -c llm-route -l b-max -x -d 'Summarize below N tokens (default 6000)'
complete -c llm-route -l gpu0-url -x -d "The answering server's URL, or several, comma-separated"
complete -c llm-route -l gpu1-url -x -d "The helper server's URL, or several, comma-separated"
complete -c llm-route -l model -x -d "The answering model, instead of the request's"
complete -c llm-route -l helper-model -x -d "The helper's model"
complete -c llm-route -l num-ctx -x -d "GPU0's context window (0: the request's, else the model's)"
complete -c llm-route -l set -x -a 'gpu0_url= gpu0_model= gpu0_api=ollama gpu0_api=openai gpu0_connect_timeout= gpu0_first_byte_timeout= gpu0_idle_timeout= gpu0_timeout= gpu0_num_ctx= gpu0_parallel= gpu0_prefill_tps= gpu0_decode_tps= gpu1_url= gpu1_model= gpu1_api=ollama gpu1_api=openai gpu1_connect_timeout= gpu1_first_byte_timeout= gpu1_idle_timeout= gpu1_timeout= gpu1_num_ctx= gpu1_parallel= gpu1_prefill_tps= gpu1_decode_tps= a_max= b_max= policy=thresholds policy=cost max_chunks= serve_listen= serve_token_file= serve_max_body= serve_max_streams= serve_keepalive= serve_drain= serve_prefetch=on serve_prefetch=off serve_prepare=' -d 'Set any configuration key, KEY=VALUE'
complete -c llm-route -l json -d 'Write Ollama NDJSON lines instead of text'
complete -c llm-route -l no-stream -d 'Write the answer only when it is complete'
complete -c llm-route -l show-thinking -d "Also print the model's thinking, in think tags"
complete -c llm-route -l target -x -d 'Tokens of the summary (default 500), or of the whole summary block when map-reduced (default 4000)'
complete -c llm-route -l preserve -x -d 'Tokens of code, paths and errors kept verbatim per summary (default 500, or 150 when map-reduced)'
complete -c llm-route -l keep-last -x -d 'Keep at least the last N messages (default 4)'
complete -c llm-route -l summarize-system -d 'Condense system messages too'
complete -c llm-route -l extractive -d 'No model: condense by the extractive summary'
complete -c llm-route -l on-helper-failure -x -a 'extractive direct fail' -d 'What to do when the helper fails'
complete -c llm-route -l on-overflow -x -a 'refuse direct' -d "A chat that cannot fit GPU0's window even condensed"
complete -c llm-route -l bands -x -a 'estimate server' -d 'What the thresholds judge'
complete -c llm-route -l policy -x -a 'thresholds cost' -d 'How the strategy is chosen'
complete -c llm-route -l jobs -x -d 'Helper requests in flight at once (default 2)'
complete -c llm-route -l chunk-tokens -x -d 'Tokens per chunk at most (default 3000)'
complete -c llm-route -l chunk-target -x -d "Tokens of a chunk's summary (default 300)"
complete -c llm-route -l max-chunks -x -d "Helper requests one chat may cost (default 256)"
complete -c llm-route -l no-cache -d 'Neither read nor write the cache'
complete -c llm-route -l cache-dir -x -a '(__fish_complete_directories)' -d 'The cache directory (default $XDG_CACHE_HOME/llm-route)'
complete -c llm-route -l cache-max -x -d 'Evict the least recently used entries past SIZE (default 64M)'
