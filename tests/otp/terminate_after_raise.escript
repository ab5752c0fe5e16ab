#!/usr/bin/env escript
%% What Erlang/OTP does when a gen_server callback raises, which
%% tests/e2e/terminate_after_panic.rs pins for Otter's panics:
%% terminate runs with the state from before the failing callback, before the DOWN;
%% a raise in terminate itself gives the exit reason and terminate does not run again.
%% Run: escript tests/otp/terminate_after_raise.escript
-module(terminate_after_raise).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2, handle_continue/2,
         terminate/2]).

init(Watcher) -> {ok, {Watcher, 0}}.
handle_call(inc, _From, {W, N}) -> {reply, N + 1, {W, N + 1}};
handle_call(raise, _From, {W, N}) -> _ = {W, N + 1000}, error(call_raised);
handle_call(continue, _From, S) -> {reply, ok, S, {continue, raise}};
handle_call(raise_in_terminate, _From, {W, N}) -> {stop, normal, ok, {W, {raise, N}}}.
handle_cast(raise, _S) -> error(cast_raised).
handle_info(raise, _S) -> error(info_raised).
handle_continue(raise, _S) -> error(continue_raised).
terminate(Reason, {W, {raise, N}}) ->
    W ! {terminated, short(Reason), N}, error(terminate_raised);
terminate(Reason, {W, N}) -> W ! {terminated, short(Reason), N}.

short({Reason, Stack}) when is_list(Stack) -> Reason;
short(Reason) -> Reason.

run(What, Raise) ->
    {ok, P} = gen_server:start(?MODULE, self(), []),
    Ref = monitor(process, P),
    2 = (gen_server:call(P, inc) + gen_server:call(P, inc)) - 1,
    catch Raise(P),
    Got = [receive M -> M after 1000 -> timeout end || _ <- [1, 2]],
    Shown = [case M of {'DOWN', Ref, _, _, R} -> {'DOWN', short(R)}; _ -> M end || M <- Got],
    io:format("~s: ~p~n", [What, Shown]).

main(_) ->
    logger:set_primary_config(level, none),
    run("raise in handle_call", fun(P) -> gen_server:call(P, raise) end),
    run("raise in handle_cast", fun(P) -> gen_server:cast(P, raise) end),
    run("raise in handle_info", fun(P) -> P ! raise end),
    run("raise in handle_continue", fun(P) -> gen_server:call(P, continue) end),
    run("raise in terminate", fun(P) -> gen_server:call(P, raise_in_terminate) end).
