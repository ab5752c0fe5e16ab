#!/usr/bin/env escript
%% What Erlang/OTP does with the order of messages and exit signals between two processes,
%% which tests/e2e/order.rs pins for Otter. Run: escript tests/otp/signal_order.escript
-module(signal_order).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

init(Parent) -> process_flag(trap_exit, true), {ok, Parent}.
handle_call(crash, _From, P) -> {stop, boom, ok, P}.
handle_cast(_, S) -> {noreply, S}.
handle_info(_, S) -> {noreply, S}.
terminate(Reason, Parent) -> Parent ! {last_result, Reason}, ok.

collect(0) -> [];
collect(N) -> receive M -> [M | collect(N - 1)] after 1000 -> [timeout] end.

main(_) ->
    error_logger:tty(false),
    process_flag(trap_exit, true),
    Me = self(),
    %% A worker's terminate sends its last result to its linked, trapping parent: the
    %% result comes before the EXIT.
    {ok, W} = gen_server:start_link(?MODULE, Me, []),
    ok = gen_server:call(W, crash),
    io:format("terminate then EXIT: ~p~n", [collect(2)]),
    %% A live process sends m1, exit(P, go), m2 to a trapping P: P sees them in that order.
    spawn(fun() -> Me ! m1, exit(Me, go), Me ! m2 end),
    io:format("m1, EXIT, m2: ~p~n", [collect(3)]),
    %% DOWN comes after what the monitored process sent before it exited.
    {_, _} = spawn_monitor(fun() -> Me ! last, exit(done) end),
    io:format("message then DOWN: ~p~n", [collect(2)]),
    %% A process not trapping exits dies at once on exit(P, boom), behind a long queue.
    Victim = spawn(fun() -> receive go -> ok end end),
    [Victim ! {filler, I} || I <- lists:seq(1, 100000)],
    Ref = monitor(process, Victim),
    T0 = erlang:monotonic_time(microsecond),
    exit(Victim, boom),
    receive {'DOWN', Ref, _, _, R} ->
        io:format("behind 100000 messages, died ~p after ~p us~n",
                  [R, erlang:monotonic_time(microsecond) - T0])
    end,
    %% The trap flag that counts is the one in force when the signal is taken: taken while
    %% P traps, the signal is an EXIT message, though a message queued before it turns
    %% trapping off.
    P = spawn(fun() ->
        process_flag(trap_exit, true),
        Me ! trapping,
        timer:sleep(100),
        receive untrap -> process_flag(trap_exit, false) end,
        receive {'EXIT', _, R2} -> Me ! {got_exit, R2} end
    end),
    receive trapping -> ok end,
    P ! untrap,
    exit(P, late),
    io:format("trapping when taken, untrapped later: ~p~n", [collect(1)]).
