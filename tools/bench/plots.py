"""PNG plots through gnuplot: each from a data file and a script generated next
to it under OUT/gnuplot/ (kept, so a plot can be tuned by hand), the PNG in OUT.

  timeline-ID.png  one post-copy/hybrid run against seconds since the migration
                   started: wire Mbit/s, remote faults/s, guest work units/s,
                   and the pusher's position with the pages still owed; a
                   dashed line at each change of phase
  bars-GROUP.png   the modes side by side per workload: total time and downtime
  latency-ID.png   the destination's fault-latency histogram (powers of two us)
"""
import os
import shutil
import subprocess

import timeline

_term = []


def gnuplot():
    return shutil.which("gnuplot")


def terminal():
    """'pngcairo' where gnuplot has it, else 'png'."""
    if not _term:
        r = subprocess.run([gnuplot(), "-e", "set terminal"], capture_output=True, text=True,
                           timeout=30)
        _term.append("pngcairo" if "pngcairo" in r.stdout + r.stderr else "png")
    return _term[0]


def _q(s):
    return "'" + str(s).replace("'", "''") + "'"


def _v(x):
    return "NaN" if x is None else "%.9g" % x


def _render(out, name, data, script):
    """Write NAME's data files ({suffix: text}) and script; run gnuplot; the PNG's name."""
    out = os.path.abspath(out)
    gdir = os.path.join(out, "gnuplot")
    os.makedirs(gdir, exist_ok=True)
    for suffix, text in data.items():
        with open(os.path.join(gdir, name + suffix), "w") as f:
            f.write(text)
    png = name + ".png"
    head = ["set terminal %s size %s noenhanced" % (terminal(), script[0]),
            "set output %s" % _q(os.path.join(out, png)),
            "cd %s" % _q(gdir)]
    gp = os.path.join(gdir, name + ".gp")
    with open(gp, "w") as f:
        f.write("\n".join(head + script[1:]) + "\n")
    r = subprocess.run([gnuplot(), gp], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("gnuplot %s: %s" % (gp, r.stderr.strip()[-300:]))
    return png


def _has(rows, col):
    return any(r[col] is not None for r in rows)


def _or_blank(cmd, ok):
    """A panel's plot command, or a flat line saying so when it has no data."""
    return cmd if ok else "plot 0 with lines lc rgb 'gray70' title 'no data'"


def _phase_marks(tk):
    """Dashed lines at the changes of phase; labels far enough apart to read."""
    ph = timeline.phases(tk)
    span = (tk[-1]["t_s"] - tk[0]["t_s"]) or 1.0
    marks = ["set arrow from %.6g, graph 0 to %.6g, graph 1 nohead dt 2 lc rgb 'gray50'" % (t, t)
             for t, _ in ph[1:]]
    labels, last = [], None
    for t, name in ph:
        if (last is None or t - last > 0.015 * span) and t < tk[-1]["t_s"] - 0.01 * span:
            labels.append("set label %s at %.6g, graph 0.97 rotate by 90 right offset 1,0 font ',8' "
                          "tc rgb 'gray30'" % (_q(name), t))
            last = t
    return marks, labels


def timeline_plot(out, rid, tk, title):
    (wire, faults, units), page_rows = timeline.series(tk)

    def table(head, rows):
        return head + "".join(" ".join(_v(x) for x in r) + "\n" for r in rows)
    pages = "# t pusher_gfn pages_owed\n" + "".join(" ".join(_v(x) for x in r) + "\n" for r in page_rows)
    marks, labels = _phase_marks(tk)
    x0, x1 = tk[0]["t_s"], tk[-1]["t_s"]
    panel = ["set lmargin at screen 0.11", "set rmargin at screen 0.97", "set grid ytics",
             "set xrange [%.6g:%.6g]" % (x0, x1 if x1 > x0 else x0 + 1), "set yrange [0:*]",
             "set offsets 0, 0, graph 0.06, 0", "set key top right"]
    n = "timeline-" + rid
    # one file per rate: a series' own gaps (a null counter) are missing rows, which
    # gnuplot joins across; NaN would break the line
    s = ["1000,1100", "set multiplot layout 4,1 title %s" % _q(title)] + panel + marks + labels + [
        "set format x ''", "set ylabel 'wire Mbit/s'",
        _or_blank("plot '%s.wire' using 1:2 with linespoints lw 2 pt 7 ps 0.4 title 'wire'" % n, wire),
        "unset label", "set ylabel 'faults/s'",
        _or_blank("plot '%s.faults' using 1:2 with linespoints lw 2 pt 7 ps 0.4 lc 7 title 'remote faults'" % n,
                  faults),
        "set ylabel 'work units/s'",
        _or_blank("plot '%s.units' using 1:2 with linespoints lw 2 pt 7 ps 0.4 lc 2 title 'guest work'" % n,
                  units),
        "set format x '%g'", "set xlabel 's since the migration started'", "set ylabel 'pages'",
        _or_blank("plot '%s.pages' using 1:2 with lines lw 2 lc 4 title 'pusher position (gfn)', "
                  "'%s.pages' using 1:3 with lines lw 2 lc 8 title 'pages owed'" % (n, n),
                  _has(page_rows, 1) or _has(page_rows, 2)),
        "unset multiplot"]
    return _render(out, n, {".wire": table("# t_mid wire_mbps\n", wire),
                            ".faults": table("# t_mid faults_per_s\n", faults),
                            ".units": table("# t_mid units_per_s\n", units), ".pages": pages}, s)


def bars_plot(out, group, title, workloads, modes, total, down):
    """total/down: {(workload, mode): value or None}."""
    def table(vals):
        head = "workload " + " ".join(modes) + "\n"
        return head + "".join(w + " " + " ".join(_v(vals.get((w, m))) for m in modes) + "\n"
                              for w in workloads)
    pos = [v for v in down.values() if v]
    log = pos and min(pos) > 0 and max(pos) / min(pos) > 50
    name = "bars-" + group
    s = ["%d,450" % max(900, 160 * len(workloads) * max(1, len(modes)) // 2),
         "set datafile missing 'NaN'", "set style data histograms",
         "set style histogram clustered gap 1", "set style fill solid 0.85 border -1",
         "set boxwidth 0.9", "set key outside bottom center horizontal", "set grid ytics",
         "set yrange [0:*]", "set offsets 0, 0, graph 0.08, 0",
         "set xrange [-0.6:%g]" % (len(workloads) - 0.4),
         "set multiplot layout 1,2 title %s" % _q(title),
         "set title 'total time (s)'",
         _or_blank("plot for [i=2:%d] '%s.total' using i:xtic(1) title columnheader(i)"
                   % (len(modes) + 1, name), any(v is not None for v in total.values())),
         "set title 'downtime (ms%s)'" % (", log scale" if log else ""),
         "set logscale y" if log else "set yrange [0:*]",
         "set yrange [*:*]" if log else "",
         _or_blank("plot for [i=2:%d] '%s.down' using i:xtic(1) title columnheader(i)"
                   % (len(modes) + 1, name), any(v is not None for v in down.values())),
         "unset multiplot"]
    return _render(out, name, {".total": table(total), ".down": table(down)}, s)


def _le(us):
    if us is None:
        return "+Inf"
    if us < 10000:
        return "%gus" % us
    return "%.4gms" % (us / 1000) if us < 1e6 else "%.4gs" % (us / 1e6)


def latency_plot(out, rid, h, title):
    nz = [i for i, c in enumerate(h["counts"]) if c]
    if not nz:
        return None
    lo, hi = max(0, nz[0] - 1), min(len(h["counts"]) - 1, nz[-1] + 1)
    data = "# le count\n" + "".join("%s %d\n" % (_le(h["le_us"][i]), h["counts"][i])
                                    for i in range(lo, hi + 1))
    name = "latency-" + rid
    s = ["900,450", "set style fill solid 0.85 border -1", "set boxwidth 0.8", "set grid ytics",
         "set title %s" % _q(title), "set xlabel 'fault request until page placed (bucket upper bound)'",
         "set ylabel 'faults'", "set yrange [0:*]", "set offsets 0, 0, graph 0.08, 0",
         "set xtics rotate by -45",
         "plot '%s.dat' using 0:2:xtic(1) with boxes lc 3 notitle" % name]
    return _render(out, name, {".dat": data}, s)
