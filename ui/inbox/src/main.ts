import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { markLoaded } from './lib/transport';

markLoaded();

const app = mount(App, { target: document.getElementById('app')! });
export default app;
