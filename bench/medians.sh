# What bench/compare.sh and bench/chapter.sh share; sourced, not run.

# "metric median" for every metric of a raw file (`name value unit` lines; comments and
# identity lines skipped).
medians() {
    grep -v '^#' "$1" |
        awk 'NF==3 && $2 ~ /^[0-9]+(\.[0-9]+)?$/ {print $1, $2}' |
        sort -k1,1 -k2,2g |
        awk '{ v[$1, ++n[$1]] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
             END { for (i = 1; i <= k; i++) { m = order[i]; c = n[m]
                   med = (c % 2) ? v[m, (c + 1) / 2] : (v[m, c / 2] + v[m, c / 2 + 1]) / 2
                   print m, med } }'
}
