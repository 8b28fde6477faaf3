# Stands in for vitis_hls so that plain tclsh can run a generated run_hls.tcl:
#     tclsh vitis_stub.tcl path/to/run_hls.tcl [step ...]
# Every Vitis command prints "CALL", its name and its arguments as one tab-separated line and
# does nothing else. `exit` prints "CALL exit <code>", stops the script and becomes tclsh's exit status. A command
# the stub doesn't know is an "invalid command name" error (status 1, the Tcl trace on stderr),
# so a new Vitis command in the template must be added here.

proc record {args} {
    puts [join [list CALL {*}$args] \t]
}

foreach command {
    open_project open_solution open_component close_project close_solution
    set_top add_files set_part create_clock set_clock_uncertainty set_directive_interface
    config_interface config_dataflow config_rtl config_export config_compile config_csim config_cosim
    csim_design csynth_design cosim_design export_design
} {
    proc $command {args} "record [list $command] {*}\$args"
}

rename exit real_exit
proc exit {{code 0}} {
    record exit $code
    return -code error -errorcode [list VITIS_STUB_EXIT $code] "exit $code"
}

set script [lindex $argv 0]
set argv [lrange $argv 1 end]
set argc [llength $argv]
if {![catch {source $script} message options]} {
    real_exit 0
}
lassign [dict get $options -errorcode] kind code
if {$kind ne "VITIS_STUB_EXIT"} {
    puts stderr [dict get $options -errorinfo]
    real_exit 1
}
real_exit $code
